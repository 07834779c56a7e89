"""End to end through a running `tiercel server`: 1,000 messages with a SIGKILL mid-way; a broker that is down at
start, then restarted.

The server is a subprocess on a free port; executions are counted in its SQLite database.
"""

from __future__ import annotations

import json
import signal
import time
import uuid

import pytest

from tiercel.testing import TiercelServer, free_port, wait_triggered
from tiercel.testing.harness import triggered

pytestmark = pytest.mark.slow


def _flow(flow_id: str, url: str, topic: str) -> str:
    return f"""
id: {flow_id}
namespace: e2e.mqtt
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value.n }}}}"
triggers:
  - id: messages
    type: mqtt.RealtimeTrigger
    server: "{url}"
    topic: "{topic}"
    serdeType: JSON
"""


def _publish(url: str, topic: str, numbers: range) -> None:
    """QoS 1 messages ``{"n": n}`` with a `message-id` user property each (as mqtt.Publish sends them)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    client.connect(host, int(port))
    client.loop_start()
    try:
        sent = []
        for n in numbers:
            properties = Properties(PacketTypes.PUBLISH)
            properties.UserProperty = [("message-id", f"m{n}")]
            sent.append(client.publish(topic, json.dumps({"n": n}), qos=1, properties=properties))
        for info in sent:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def _subscribed(server: TiercelServer, home, flow_id: str, url: str, topic: str) -> None:
    """Wait until the trigger's session subscribes: a probe message makes an execution."""
    deadline = time.monotonic() + 30
    while not triggered(home, flow_id):
        assert time.monotonic() < deadline and server.alive(), server.log.read_text()[-3000:]
        _publish(url, topic, range(-1, 0))
        time.sleep(0.2)


def test_thousand_messages_exactly_once_across_a_sigkill(mqtt_url, tmp_path):
    topic, flow_id = f"e2e/{uuid.uuid4().hex[:8]}", "thousand"
    home = tmp_path / "home"
    server = TiercelServer(home).start()
    try:
        server.deploy(_flow(flow_id, mqtt_url, topic))
        _subscribed(server, home, flow_id, mqtt_url, topic)
        _publish(mqtt_url, topic, range(500))  # two halves, the kill between
        wait_triggered(home, flow_id, 100, 60, server, interval=0.01)
        server.stop(signal.SIGKILL)  # executions created whose PUBACKs were never sent
        killed_at = len(triggered(home, flow_id))
        assert 1 < killed_at <= 501
        _publish(mqtt_url, topic, range(500, 1000))  # kept by the broker for the trigger's session
        server = TiercelServer(home).start()
        wait_triggered(home, flow_id, 1001, 120, server)
        time.sleep(1.0)  # anything resent after the restart has had time to show up
        found = triggered(home, flow_id)
    finally:
        server.stop()
    numbers = sorted(v["value"]["n"] for v in found)
    assert numbers == list(range(-1, 1000)), f"{len(numbers)} executions, {len(set(numbers))} distinct (killed at {killed_at})"


def test_broker_down_at_start_then_up_then_restarted(tmp_path):
    """The trigger logs a clear error naming the broker, backs off, and resumes (its session kept) when it is back."""
    from tiercel.testing import services

    port = free_port()
    url, topic, flow_id = f"mqtt://127.0.0.1:{port}", "orders", "down"
    home = tmp_path / "home"
    server = TiercelServer(home).start()
    broker = None
    try:
        server.deploy(_flow(flow_id, url, topic))
        deadline = time.monotonic() + 15
        while f"MQTT broker at {url} is unreachable" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.1)
        broker = services.mqtt_url(port=port)
        _subscribed(server, home, flow_id, url, topic)  # resumed after the backoff
        broker.restart()  # mosquitto saves its sessions on the way down and loads them back
        _publish(url, topic, range(5))  # the trigger may not be back yet: the session keeps them
        found = wait_triggered(home, flow_id, 6, 60, server)
        assert sorted(v["value"]["n"] for v in found) == [-1, 0, 1, 2, 3, 4]
        assert server.log.read_text().count(f"MQTT broker at {url} is unreachable") < 12  # backoff, not a loop
        assert server.alive()
    finally:
        server.stop()
        if broker is not None:
            broker.stop()
