"""pulsar.* against a real broker (pulsar-lite, started by the pulsar_url fixture)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest

from tiercel.testing import TriggerHarness, free_port, read_file, run_flow, task_run


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


def _values(h: TriggerHarness) -> list:
    return [e["trigger"]["variables"] for e in h.executions()]


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
    data = read_file(task_run(ex, "consume")["outputs"]["uri"], tmp_path, "test.pulsar")
    records = [json.loads(line) for line in data.splitlines()]
    assert [(r["key"], r["value"], r["properties"]) for r in records] == [
        ("a", {"n": 1}, {"source": "test"}),
        ("b", {"n": 2}, {}),
    ]


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
    h = TriggerHarness(_flow(pulsar_url, topic, "pulsar.RealtimeTrigger"), tmp_path)

    async def scenario():
        stream = h.listen()
        first = asyncio.ensure_future(_take(stream, 20))
        await asyncio.sleep(0.3)  # subscribed (Earliest would find them anyway)
        _send(pulsar_url, topic, [json.dumps({"n": i}).encode() for i in range(20)])
        events = await first
        for event in events[:12]:
            assert await h.deliver(event) is not None
        for event in events[12:16]:  # created, then the server dies before acknowledging
            await h.deliver(dataclasses.replace(event, ack=None))
        await stream.aclose()
        h.restart()
        stream = h.listen()  # 8 unacknowledged come back
        again = await _take(stream, 8)
        results = [await h.deliver(event) for event in again]
        assert sum(r is None for r in results) == 4
        with pytest.raises(asyncio.TimeoutError):  # everything acknowledged: nothing more
            await asyncio.wait_for(stream.__anext__(), 1.5)
        await stream.aclose()

    with h:
        asyncio.run(scenario())
        assert sorted(v["value"]["n"] for v in _values(h)) == list(range(20))


def test_realtime_nack_redelivers_and_bad_json_to_dead_letter(pulsar_url, tmp_path):
    topic, dlq = _topic(), _topic()
    h = TriggerHarness(
        _flow(
            pulsar_url,
            topic,
            "pulsar.RealtimeTrigger",
            f"    deadLetterTopic: {dlq}\n    negativeAckRedeliveryDelay: PT0.2S\n",
        ),
        tmp_path,
    )

    async def scenario():
        _send(pulsar_url, topic, [b'{"n": 1}', b"{oops", b'{"n": 2}'])
        stream = h.listen()
        first, second = await _take(stream, 2)
        with h.store_down("database is down"), pytest.raises(RuntimeError, match="database is down"):
            await h.deliver(first)  # negatively acknowledged
        await h.deliver(second)
        (again,) = await _take(stream, 1)
        assert again.key == first.key and again.variables["redeliveryCount"] >= 1
        await h.deliver(again)
        await stream.aclose()
        client = _client(pulsar_url)
        try:
            reader = client.subscribe(dlq, "check", initial_position=__import__("pulsar").InitialPosition.Earliest)
            message = reader.receive(5000)
            assert message.data() == b"{oops" and "JSON" in message.properties()["tiercel.error"]
        finally:
            client.close()

    with h:
        asyncio.run(scenario())
        assert sorted(v["value"]["n"] for v in _values(h)) == [1, 2]


def test_polling_trigger_batch_acknowledged_after_creation(pulsar_url, tmp_path):
    topic = _topic()
    h = TriggerHarness(
        _flow(pulsar_url, topic, "pulsar.Trigger", "    pollDuration: PT0.3S\n    maxRecords: 50\n"), tmp_path
    )

    async def scenario():
        _send(pulsar_url, topic, [json.dumps({"n": i}).encode() for i in range(10)])
        event = await h.poll_once()
        assert event.variables["messagesCount"] == 10
        await h.deliver(dataclasses.replace(event, ack=None))  # crash before the ack
        await event.nack()
        replay = await h.poll_once()  # the same messages come back: the same batch key
        assert replay.key == event.key and await h.deliver(replay) is None
        assert await h.poll_once() is None
        return event

    with h:
        event = asyncio.run(scenario())
        assert [v["messagesCount"] for v in _values(h)] == [10]
        with h.open_file(event.variables["uri"]) as f:
            assert [json.loads(line)["value"]["n"] for line in f.read().splitlines()] == list(range(10))


def test_realtime_fails_fast_naming_a_down_broker(tmp_path):
    port = free_port()
    h = TriggerHarness(_flow(f"pulsar://127.0.0.1:{port}", "t", "pulsar.RealtimeTrigger"), tmp_path)

    async def scenario():
        with pytest.raises(ConnectionError, match=f"pulsar://127.0.0.1:{port} is unreachable"):
            await asyncio.wait_for(h.listen().__anext__(), 10)

    with h:
        asyncio.run(scenario())
