"""pulsar.* against a real broker (pulsar-lite, started by the pulsar_url fixture)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest

from tiercel.engine.delivery import deliver, trigger_context
from tiercel.engine.runtime import Runtime
from tiercel.flow import load_flow
from tiercel.testing.harness import run_flow, task_run
from tiercel.testing.services import free_port


def _topic() -> str:
    return f"persistent://public/default/t-{uuid.uuid4().hex[:8]}"


def _client(url: str):
    import logging

    import pulsar

    return pulsar.Client(url, logger=logging.getLogger("tiercel_pulsar.client"))


def _send(url: str, topic: str, payloads: list[bytes]) -> None:
    client = _client(url)
    try:
        producer = client.create_producer(topic)
        for payload in payloads:
            producer.send(payload)
    finally:
        client.close()


def _flow(url: str, topic: str, kind: str, extra: str = "") -> str:
    return f"""
id: on_message
namespace: test.pulsar
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value }}}}"
triggers:
  - id: messages
    type: {kind}
    uri: {url}
    topic: {topic}
    subscriptionName: tiercel
    subscriptionType: Shared
    deserializer: JSON
{extra}"""


def _executions(rt: Runtime) -> list[dict]:
    rows = rt.db.query('SELECT "trigger", dedupe_key FROM executions ORDER BY created_at')
    return [dict(json.loads(r[0]), dedupe_key=r[1]) for r in rows]


async def _take(stream, count: int, timeout: float = 15) -> list:
    deadline = time.monotonic() + timeout
    return [await asyncio.wait_for(stream.__anext__(), max(0.1, deadline - time.monotonic())) for _ in range(count)]


def test_produce_then_consume_round_trip(pulsar_url, tmp_path):
    topic, copy = _topic(), _topic()
    flow = f"""
id: round_trip
namespace: test.pulsar
tasks:
  - id: produce
    type: io.kestra.plugin.pulsar.Produce
    uri: {pulsar_url}
    topic: {topic}
    serializer: JSON
    from:
      - {{key: a, value: {{n: 1}}, properties: {{source: test}}}}
      - {{key: b, value: {{n: 2}}}}
  - id: consume
    type: pulsar.Consume
    uri: {pulsar_url}
    topic: {topic}
    subscriptionName: reader
    deserializer: JSON
    pollDuration: PT0.5S
  - id: forward
    type: pulsar.Produce
    uri: {pulsar_url}
    topic: {copy}
    serializer: JSON
    from: "{{{{ outputs.consume.uri }}}}"
  - id: again
    type: pulsar.Consume
    uri: {pulsar_url}
    topic: {topic}
    subscriptionName: reader
    pollDuration: PT0.3S
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "produce")["outputs"]["messagesCount"] == 2
    assert task_run(ex, "consume")["outputs"]["messagesCount"] == 2
    assert task_run(ex, "forward")["outputs"]["messagesCount"] == 2
    assert task_run(ex, "again")["outputs"]["messagesCount"] == 0  # acknowledged by the first read
    rt = Runtime(tmp_path)
    try:
        with rt.storage.open(task_run(ex, "consume")["outputs"]["uri"], "test.pulsar") as f:
            records = [json.loads(line) for line in f.read().splitlines()]
    finally:
        rt.close()
    assert [(r["key"], r["value"], r["properties"]) for r in records] == [("a", {"n": 1}, {"source": "test"}),
                                                                          ("b", {"n": 2}, {})]


def test_produce_fails_fast_naming_a_down_broker(tmp_path):
    port = free_port()
    flow = f"""
id: down
namespace: test.pulsar
tasks:
  - id: produce
    type: pulsar.Produce
    uri: pulsar://127.0.0.1:{port}
    topic: t
    from: {{value: x}}
"""
    started = time.monotonic()
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "FAILED"
    assert f"pulsar://127.0.0.1:{port} is unreachable" in json.dumps(task_run(ex, "produce"))
    assert time.monotonic() - started < 10


def test_realtime_ack_after_creation_and_redelivery_deduplicated(pulsar_url, tmp_path):
    topic = _topic()
    flow = load_flow(_flow(pulsar_url, topic, "pulsar.RealtimeTrigger"))
    trigger = flow.triggers[0]
    rt = Runtime(tmp_path)

    async def scenario():
        stream = trigger.listen(trigger_context(rt, flow, trigger))
        first = asyncio.ensure_future(_take(stream, 20))
        await asyncio.sleep(0.3)  # subscribed (Earliest would find them anyway)
        _send(pulsar_url, topic, [json.dumps({"n": i}).encode() for i in range(20)])
        events = await first
        for event in events[:12]:
            assert await deliver(rt, flow, trigger, event) is not None
        for event in events[12:16]:  # created, then the server dies before acknowledging
            await deliver(rt, flow, trigger, dataclasses.replace(event, ack=None))
        await stream.aclose()
        stream = trigger.listen(trigger_context(rt, flow, trigger))  # restart: 8 unacknowledged come back
        again = await _take(stream, 8)
        results = [await deliver(rt, flow, trigger, event) for event in again]
        assert sum(r is None for r in results) == 4
        with pytest.raises(asyncio.TimeoutError):  # everything acknowledged: nothing more
            await asyncio.wait_for(stream.__anext__(), 1.5)
        await stream.aclose()

    try:
        asyncio.run(scenario())
        assert sorted(e["variables"]["value"]["n"] for e in _executions(rt)) == list(range(20))
    finally:
        rt.close()


def test_realtime_nack_redelivers_and_bad_json_to_dead_letter(pulsar_url, tmp_path):
    topic, dlq = _topic(), _topic()
    flow = load_flow(_flow(pulsar_url, topic, "pulsar.RealtimeTrigger",
                           f"    deadLetterTopic: {dlq}\n    negativeAckRedeliveryDelay: PT0.2S\n"))
    trigger = flow.triggers[0]
    rt = Runtime(tmp_path)

    class Boom(Exception):
        pass

    def broken(ex):
        raise Boom("database is down")

    async def scenario():
        _send(pulsar_url, topic, [b'{"n": 1}', b"{oops", b'{"n": 2}'])
        stream = trigger.listen(trigger_context(rt, flow, trigger))
        first, second = await _take(stream, 2)
        rt.submit, original = broken, rt.submit
        with pytest.raises(Boom):
            await deliver(rt, flow, trigger, first)  # negatively acknowledged
        rt.submit = original
        await deliver(rt, flow, trigger, second)
        (again,) = await _take(stream, 1)
        assert again.key == first.key and again.variables["redeliveryCount"] >= 1
        await deliver(rt, flow, trigger, again)
        await stream.aclose()
        client = _client(pulsar_url)
        try:
            reader = client.subscribe(dlq, "check", initial_position=__import__("pulsar").InitialPosition.Earliest)
            message = reader.receive(5000)
            assert message.data() == b"{oops" and "JSON" in message.properties()["tiercel.error"]
        finally:
            client.close()

    try:
        asyncio.run(scenario())
        assert sorted(e["variables"]["value"]["n"] for e in _executions(rt)) == [1, 2]
    finally:
        rt.close()


def test_polling_trigger_batch_acknowledged_after_creation(pulsar_url, tmp_path):
    topic = _topic()
    flow = load_flow(_flow(pulsar_url, topic, "pulsar.Trigger", "    pollDuration: PT0.3S\n    maxRecords: 50\n"))
    trigger = flow.triggers[0]
    rt = Runtime(tmp_path)

    async def scenario():
        _send(pulsar_url, topic, [json.dumps({"n": i}).encode() for i in range(10)])
        ctx = trigger_context(rt, flow, trigger)
        event = await trigger.poll(ctx)
        assert event.variables["messagesCount"] == 10
        await deliver(rt, flow, trigger, dataclasses.replace(event, ack=None))  # crash before the ack
        await event.nack()
        replay = await trigger.poll(ctx)  # the same messages come back: the same batch key
        assert replay.key == event.key and await deliver(rt, flow, trigger, replay) is None
        assert await trigger.poll(ctx) is None
        return event

    try:
        event = asyncio.run(scenario())
        assert [e["variables"]["messagesCount"] for e in _executions(rt)] == [10]
        with rt.storage.open(event.variables["uri"], "test.pulsar") as f:
            assert [json.loads(line)["value"]["n"] for line in f.read().splitlines()] == list(range(10))
    finally:
        rt.close()


def test_realtime_fails_fast_naming_a_down_broker(tmp_path):
    port = free_port()
    flow = load_flow(_flow(f"pulsar://127.0.0.1:{port}", "t", "pulsar.RealtimeTrigger"))
    trigger = flow.triggers[0]
    rt = Runtime(tmp_path)

    async def scenario():
        with pytest.raises(ConnectionError, match=f"pulsar://127.0.0.1:{port} is unreachable"):
            await asyncio.wait_for(trigger.listen(trigger_context(rt, flow, trigger)).__anext__(), 10)

    try:
        asyncio.run(scenario())
    finally:
        rt.close()
