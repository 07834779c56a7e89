"""amqp.* against the machine's RabbitMQ (queues named per test, so tests never share state)."""

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


async def _queue(url: str, name: str, messages: list[tuple[bytes, str | None]] = ()) -> None:
    """Declare the queue *name* (the broker drops it a minute after its last use) and publish *messages* to it."""
    import aio_pika

    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await channel.declare_queue(name, durable=False, arguments={"x-expires": 60_000})
        for body, message_id in messages:
            await channel.default_exchange.publish(aio_pika.Message(body, message_id=message_id), routing_key=name)
    finally:
        await connection.close()


async def _depth(url: str, name: str) -> int:
    """Messages ready in the queue."""
    import aio_pika

    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count
    finally:
        await connection.close()


async def _drain(url: str, name: str) -> list:
    import aio_pika

    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        found = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            found.append(message)
        return found
    finally:
        await connection.close()


def _flow(url: str, queue: str, kind: str = "amqp.RealtimeTrigger", extra: str = "") -> str:
    return f"""
id: on_message
namespace: test.amqp
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value }}}}"
triggers:
  - id: messages
    type: {kind}
    url: "{url}"
    queue: {queue}
    serdeType: JSON
{extra}"""


def test_declare_publish_consume_through_a_topic_exchange(amqp_url, tmp_path):
    exchange, queue = _name("events"), _name("audit")
    flow = f"""
id: topology
namespace: test.amqp
tasks:
  - id: exchange
    type: io.kestra.plugin.amqp.DeclareExchange
    url: "{amqp_url}"
    name: {exchange}
    exchangeType: TOPIC
    autoDelete: true
  - id: queue
    type: io.kestra.plugin.amqp.CreateQueue
    url: "{amqp_url}"
    name: {queue}
    durability: false
    args: {{x-expires: 60000}}
  - id: bind
    type: amqp.QueueBind
    url: "{amqp_url}"
    exchange: {exchange}
    queue: {queue}
    bindingKey: "order.*"
  - id: publish
    type: io.kestra.plugin.amqp.Publish
    url: "{amqp_url}"
    exchange: {exchange}
    routingKey: order.created
    serdeType: JSON
    headers: {{source: test}}
    from: [{{n: 1}}, {{n: 2}}, {{n: 3}}]
  - id: ignored
    type: amqp.Publish
    url: "{amqp_url}"
    exchange: {exchange}
    routingKey: invoice.created
    from: not routed to the queue
  - id: consume
    type: amqp.Consume
    url: "{amqp_url}"
    queue: {queue}
    serdeType: JSON
    pollDuration: PT0.3S
  - id: again
    type: amqp.Consume
    url: "{amqp_url}"
    queue: {queue}
    pollDuration: PT0.2S
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "publish")["outputs"]["messagesCount"] == 3
    consume = task_run(ex, "consume")["outputs"]
    assert consume["count"] == 3
    assert task_run(ex, "again")["outputs"]["count"] == 0  # acknowledged after the file was stored
    records = [json.loads(line) for line in read_file(consume["uri"], tmp_path, "test.amqp").splitlines()]
    assert [r["value"]["n"] for r in records] == [1, 2, 3]
    assert records[0]["routingKey"] == "order.created" and records[0]["headers"] == {"source": "test"}
    assert len({r["messageId"] for r in records}) == 3


def test_publish_fails_fast_naming_a_down_broker_without_its_password(tmp_path):
    port = free_port()
    flow = f"""
id: down
namespace: test.amqp
tasks:
  - id: publish
    type: amqp.Publish
    url: "amqp://guest:hunter2@127.0.0.1:{port}/"
    routingKey: q
    from: x
"""
    started = time.monotonic()
    ex = run_flow(flow, home=tmp_path)
    text = json.dumps(task_run(ex, "publish"))
    assert ex["state"] == "FAILED"
    assert f"RabbitMQ at amqp://guest:***@127.0.0.1:{port}/ is unreachable" in text and "hunter2" not in text
    assert time.monotonic() - started < 15


def test_realtime_ack_after_creation_crash_redelivery_deduplicated(amqp_url, tmp_path):
    queue = _name("rt")
    h = TriggerHarness(_flow(amqp_url, queue, extra="    prefetchCount: 50\n"), tmp_path)

    async def scenario():
        await _queue(amqp_url, queue, [(json.dumps({"n": i}).encode(), f"m{i}") for i in range(20)])
        events, stream = await h.events(20)
        for event in events[:12]:
            assert await h.deliver(event) is not None
        for event in events[12:16]:  # created, then the server dies before acknowledging
            await h.deliver(dataclasses.replace(event, ack=None))
        await stream.aclose()  # the channel closes: RabbitMQ requeues the 8 unacknowledged
        h.restart()
        again, stream = await h.events(8)
        results = [await h.deliver(event) for event in again]
        assert sum(r is None for r in results) == 4
        assert all(e.variables["redelivered"] for e in again)
        with pytest.raises(asyncio.TimeoutError):  # everything acknowledged: nothing more
            await asyncio.wait_for(stream.__anext__(), 0.5)
        await stream.aclose()
        assert await _depth(amqp_url, queue) == 0

    with h:
        asyncio.run(scenario())
        executions = h.executions()
        assert sorted(e["trigger"]["variables"]["value"]["n"] for e in executions) == list(range(20))
        assert executions[0]["trigger"]["type"] == "amqp.RealtimeTrigger"
        assert executions[0]["trigger"]["variables"]["messageId"] == "m0"


def test_realtime_store_down_requeues_and_bad_json_to_dead_letter_queue(amqp_url, tmp_path):
    queue, dead = _name("bad"), _name("dead")
    h = TriggerHarness(_flow(amqp_url, queue, extra=f"    deadLetterQueue: {dead}\n"), tmp_path)

    async def scenario():
        await _queue(amqp_url, dead)
        await _queue(amqp_url, queue, [(b'{"n": 1}', "a"), (b"{oops", "b"), (b'{"n": 2}', "c")])
        stream = h.listen()
        first = await asyncio.wait_for(stream.__anext__(), 10)
        with h.store_down("database is down"), pytest.raises(RuntimeError, match="database is down"):
            await h.deliver(first)  # requeued, not lost
        second = await asyncio.wait_for(stream.__anext__(), 10)
        await h.deliver(second)
        again = await asyncio.wait_for(stream.__anext__(), 10)
        assert again.key == first.key and again.variables["redelivered"]
        await h.deliver(again)
        await stream.aclose()
        (parked,) = await _drain(amqp_url, dead)
        assert parked.body == b"{oops" and "JSON" in parked.headers["tiercel.error"]
        assert await _depth(amqp_url, queue) == 0

    with h:
        asyncio.run(scenario())
        assert sorted(e["trigger"]["variables"]["value"]["n"] for e in h.executions()) == [1, 2]


def test_polling_trigger_batch_acked_after_creation_and_replayed_once(amqp_url, tmp_path):
    queue = _name("batch")
    h = TriggerHarness(_flow(amqp_url, queue, "amqp.Trigger", "    maxRecords: 50\n"), tmp_path)

    async def scenario():
        await _queue(amqp_url, queue, [(json.dumps({"n": i}).encode(), f"m{i}") for i in range(10)])
        event = await h.poll_once()
        assert event.variables["count"] == 10
        await h.deliver(dataclasses.replace(event, ack=None))  # crash before the ack
        await event.nack()
        await _queue(amqp_url, queue, [(b'{"n": 100}', "late")])  # arrives meanwhile: not in the replayed batch
        h.restart()
        replay = await h.poll_once()
        assert replay.key == event.key and await h.deliver(replay) is None
        follow = await h.poll_once()
        assert follow.variables["count"] == 1 and await h.deliver(follow) is not None
        assert await h.poll_once() is None
        return event

    with h:
        event = asyncio.run(scenario())
        assert [e["trigger"]["variables"]["count"] for e in h.executions()] == [10, 1]
        with h.open_file(event.variables["uri"]) as f:
            assert [json.loads(line)["value"]["n"] for line in f.read().splitlines()] == list(range(10))


def test_realtime_fails_fast_naming_a_down_broker(tmp_path):
    port = free_port()
    h = TriggerHarness(_flow(f"amqp://guest:guest@127.0.0.1:{port}/", "q"), tmp_path)

    async def scenario():
        with pytest.raises(ConnectionError, match=f"RabbitMQ at amqp://guest:\\*\\*\\*@127.0.0.1:{port}/ is unreachable"):
            await asyncio.wait_for(h.listen().__anext__(), 15)

    with h:
        asyncio.run(scenario())
