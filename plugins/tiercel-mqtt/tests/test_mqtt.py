"""mqtt.* against a private mosquitto (persistence on; one topic and client id per test)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest

from tiercel.testing import TriggerHarness, free_port, read_file, run_flow, task_run


def _publish(url: str, topic: str, payloads: list[bytes], ids: bool = True) -> None:
    """Publish with QoS 1 (MQTT 5, a `message-id` user property each unless *ids* is False)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    host, port = url.removeprefix("mqtt://").split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(host, int(port))
    client.loop_start()
    try:
        for payload in payloads:
            properties = None
            if ids:
                properties = Properties(PacketTypes.PUBLISH)
                properties.UserProperty = [("message-id", uuid.uuid4().hex)]
            client.publish(topic, payload, qos=1, properties=properties).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _flow(url: str, topic: str, kind: str = "mqtt.RealtimeTrigger", extra: str = "") -> str:
    return f"""
id: on_message
namespace: test.mqtt
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value }}}}"
triggers:
  - id: messages
    type: {kind}
    server: "{url}"
    topic: "{topic}"
    clientId: "c-{uuid.uuid4().hex[:8]}"
    serdeType: JSON
{extra}"""


def test_publish_and_subscribe_both_protocol_versions(mqtt_url, tmp_path):
    topic = f"t{uuid.uuid4().hex[:8]}"
    flow = f"""
id: round_trip
namespace: test.mqtt
tasks:
  - id: parallel
    type: core.Parallel
    tasks:
      - id: subscribe
        type: io.kestra.plugin.mqtt.Subscribe
        server: "{mqtt_url}"
        topic: "{topic}/#"
        serdeType: JSON
        maxRecords: 3
        maxDuration: PT10S
      - id: publishers  # MQTT keeps no message for a subscriber that is not subscribed yet: let it subscribe first
        type: core.Sequential
        tasks:
          - {{id: subscribed, type: core.Sleep, duration: PT2S}}
          - id: publish
            type: io.kestra.plugin.mqtt.Publish
            server: "{mqtt_url}"
            topic: "{topic}/a"
            serdeType: JSON
            from: [{{n: 1}}, {{n: 2}}]
          - id: publish_v311
            type: mqtt.Publish
            server: "{mqtt_url}"
            version: V_3_1_1
            topic: "{topic}/b"
            qos: 2
            from: "3"
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    subscribed = task_run(ex, "subscribe")["outputs"]
    records = [json.loads(line) for line in read_file(subscribed["uri"], tmp_path, "test.mqtt").splitlines()]
    assert sorted(json.dumps(r["value"]) for r in records) == ['3', '{"n": 1}', '{"n": 2}']
    assert all(r["id"] for r in records if r["topic"] == f"{topic}/a")


def test_publish_fails_fast_naming_a_down_broker(tmp_path):
    port = free_port()
    flow = f"""
id: down
namespace: test.mqtt
tasks:
  - id: publish
    type: mqtt.Publish
    server: tcp://127.0.0.1:{port}
    username: me
    password: hunter2
    topic: x
    from: x
"""
    started = time.monotonic()
    ex = run_flow(flow, home=tmp_path)
    text = json.dumps(task_run(ex, "publish"))
    assert ex["state"] == "FAILED" and f"MQTT broker at tcp://127.0.0.1:{port} is unreachable" in text
    assert "hunter2" not in text and time.monotonic() - started < 15


def test_realtime_ack_after_creation_persistent_session_and_dedupe(mqtt_url, tmp_path):
    topic = f"t{uuid.uuid4().hex[:8]}"
    h = TriggerHarness(_flow(mqtt_url, f"{topic}/#"), tmp_path)

    async def scenario():
        stream = h.listen()
        first = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.3)  # subscribed: the session exists from now on
        await asyncio.to_thread(_publish, mqtt_url, f"{topic}/x", [json.dumps({"n": i}).encode() for i in range(10)])
        events = [await first] + [await asyncio.wait_for(stream.__anext__(), 10) for _ in range(9)]
        for event in events[:6]:
            assert await h.deliver(event) is not None
        for event in events[6:8]:  # created, then the server dies before the PUBACK
            await h.deliver(dataclasses.replace(event, ack=None))
        await stream.aclose()
        # published while no server is connected: the broker keeps them for the session
        await asyncio.to_thread(_publish, mqtt_url, f"{topic}/x", [json.dumps({"n": i}).encode() for i in range(10, 13)])
        h.restart()
        again, stream = await h.events(7)  # 4 never acknowledged + 3 new
        results = [await h.deliver(event) for event in again]
        assert sum(r is None for r in results) == 2
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(stream.__anext__(), 0.5)
        await stream.aclose()

    with h:
        asyncio.run(scenario())
        executions = h.executions()
        assert sorted(e["trigger"]["variables"]["value"]["n"] for e in executions) == list(range(13))
        assert executions[0]["trigger"]["variables"]["topic"] == f"{topic}/x"


def test_realtime_bad_json_to_dead_letter_topic(mqtt_url, tmp_path):
    topic = f"t{uuid.uuid4().hex[:8]}"
    h = TriggerHarness(_flow(mqtt_url, f"{topic}/in", extra=f"    deadLetterTopic: {topic}/dead\n"), tmp_path)

    async def scenario():
        import aiomqtt

        host, port = mqtt_url.removeprefix("mqtt://").split(":")
        async with aiomqtt.Client(host, int(port)) as watcher:
            await watcher.subscribe(f"{topic}/dead", qos=1)
            stream = h.listen()
            first = asyncio.ensure_future(stream.__anext__())
            await asyncio.sleep(0.3)
            await asyncio.to_thread(_publish, mqtt_url, f"{topic}/in", [b"{oops", b'{"n": 2}'])
            await h.deliver(await first)
            await stream.aclose()
            parked = await asyncio.wait_for(anext(aiter(watcher.messages)), 5)
            assert parked.payload == b"{oops"

    with h:
        asyncio.run(scenario())
        assert [e["trigger"]["variables"]["value"]["n"] for e in h.executions()] == [2]


def test_polling_trigger_batch_acked_after_creation_and_replayed_once(mqtt_url, tmp_path):
    topic = f"t{uuid.uuid4().hex[:8]}"
    h = TriggerHarness(_flow(mqtt_url, f"{topic}/#", "mqtt.Trigger", "    pollDuration: PT0.5S\n"), tmp_path)

    async def scenario():
        assert await h.poll_once() is None  # the first poll makes the session and its subscription
        await asyncio.to_thread(_publish, mqtt_url, f"{topic}/x", [json.dumps({"n": i}).encode() for i in range(5)])
        event = await h.poll_once()
        assert event.variables["count"] == 5
        await h.deliver(dataclasses.replace(event, ack=None))  # crash before the PUBACKs
        await event.nack()
        await asyncio.to_thread(_publish, mqtt_url, f"{topic}/x", [b'{"n": 100}'])  # arrives meanwhile
        h.restart()
        replay = await h.poll_once()
        assert replay.key == event.key and await h.deliver(replay) is None
        follow = await h.poll_once()
        assert follow.variables["count"] == 1 and await h.deliver(follow) is not None
        assert await h.poll_once() is None

    with h:
        asyncio.run(scenario())
        assert [e["trigger"]["variables"]["count"] for e in h.executions()] == [5, 1]


def test_realtime_fails_fast_naming_a_down_broker(tmp_path):
    port = free_port()
    h = TriggerHarness(_flow(f"tcp://127.0.0.1:{port}", "x"), tmp_path)

    async def scenario():
        with pytest.raises(ConnectionError, match=f"MQTT broker at tcp://127.0.0.1:{port} is unreachable"):
            await asyncio.wait_for(h.listen().__anext__(), 15)

    with h:
        asyncio.run(scenario())
