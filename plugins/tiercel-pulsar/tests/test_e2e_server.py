"""End to end through a running `tiercel server`: 1,000 messages, a SIGKILL in the middle, a broker that is down.

The server is a subprocess on a free port; executions are counted in its SQLite database.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid

import pytest

from tiercel.testing.harness import TiercelServer, triggered, wait_triggered
from tiercel.testing.services import free_port

pytestmark = pytest.mark.slow


def _flow(flow_id: str, url: str, topic: str) -> str:
    return f"""
id: {flow_id}
namespace: e2e.pulsar
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value.n }}}}"
triggers:
  - id: messages
    type: pulsar.RealtimeTrigger
    uri: {url}
    topic: {topic}
    subscriptionName: tiercel
    subscriptionType: Shared
    deserializer: JSON
"""


def _send(url: str, topic: str, numbers: range) -> None:
    import logging

    import pulsar

    client = pulsar.Client(url, logger=logging.getLogger("tiercel_pulsar.client"))
    try:
        producer = client.create_producer(topic)
        for n in numbers:
            producer.send_async(json.dumps({"n": n}).encode(), None)
        producer.flush()
    finally:
        client.close()


def test_thousand_messages_exactly_once_across_a_sigkill(pulsar_url, tmp_path):
    topic, flow_id = f"persistent://public/default/e2e-{uuid.uuid4().hex[:8]}", "thousand"
    home = tmp_path / "home"
    server = TiercelServer(home).start()
    try:
        server.deploy(_flow(flow_id, pulsar_url, topic))
        # two halves with the kill between, so it lands mid-stream however fast this machine consumes
        _send(pulsar_url, topic, range(500))
        wait_triggered(home, flow_id, 100, 60, server, interval=0.01)
        server.stop(signal.SIGKILL)  # in the middle: created executions whose messages were never acknowledged
        killed_at = len(triggered(home, flow_id))
        assert 0 < killed_at <= 500
        _send(pulsar_url, topic, range(500, 1000))  # arrives while the server is down
        server = TiercelServer(home).start()
        wait_triggered(home, flow_id, 1000, 120, server)
        time.sleep(1.0)
        found = triggered(home, flow_id)
    finally:
        server.stop()
    numbers = sorted(v["value"]["n"] for v in found)
    assert numbers == list(range(1000)), f"{len(numbers)} executions, {len(set(numbers))} distinct (killed at {killed_at})"


def test_broker_down_at_start_then_up_then_restarted(tmp_path):
    """The trigger logs a clear error naming the broker, backs off, and resumes when it is back."""
    from tiercel.testing import services

    binary = services._package_binary("pulsar_lite", "bin/pulsar-lite")
    if binary is None:
        services.require("Pulsar (pulsar-lite broker)", "pip install 'tiercel-pulsar[test]'")
    port = free_port()
    url = f"pulsar://127.0.0.1:{port}"
    config = tmp_path / "pulsar-lite.toml"
    config.write_text("[metrics]\nenabled = false\n")

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([str(binary), "--config", str(config), "--addr", f"127.0.0.1:{port}",
                                 "--db-path", str(tmp_path / "db")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                services._pulsar_probe("127.0.0.1", port)
                return proc
            except (OSError, ValueError):
                assert time.monotonic() < deadline and proc.poll() is None, "pulsar-lite did not start"
                time.sleep(0.05)

    home, flow_id, topic = tmp_path / "home", "down", "persistent://public/default/orders"
    server = TiercelServer(home).start()
    proc = None
    try:
        server.deploy(_flow(flow_id, url, topic))
        deadline = time.monotonic() + 15
        while f"Pulsar broker at {url} is unreachable" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.1)
        proc = start()
        _send(url, topic, range(5))
        assert len(wait_triggered(home, flow_id, 5, 30, server)) == 5  # resumed after the backoff
        proc.terminate()
        proc.wait(10)
        time.sleep(1.0)
        proc = start()  # same data directory: the subscription survives
        _send(url, topic, range(100, 105))
        found = wait_triggered(home, flow_id, 10, 60, server)
        assert sorted(v["value"]["n"] for v in found) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
        assert server.log.read_text().count(f"Pulsar broker at {url} is unreachable") < 12
        assert server.proc.poll() is None
    finally:
        server.stop()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)
