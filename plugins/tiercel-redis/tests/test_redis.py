"""redis.* against a real Redis (a private redis-server, or a database of the machine's own)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest

from tiercel.testing import TriggerHarness, free_port, run_flow, task_run


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _client(url: str):
    import redis.asyncio as aioredis

    return aioredis.from_url(url)


def _flow(url: str, kind: str, body: str) -> str:
    return f"""
id: on_redis
namespace: test.redis
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value }}}}"
triggers:
  - id: source
    type: {kind}
    url: "{url}"
{body}"""


async def _take(stream, count: int, timeout: float = 15) -> list:
    deadline = time.monotonic() + timeout
    return [await asyncio.wait_for(stream.__anext__(), max(0.1, deadline - time.monotonic())) for _ in range(count)]


# --- tasks ---------------------------------------------------------------------------------

def test_strings_set_get_delete(redis_url, tmp_path):
    key = _name("user")
    flow = f"""
id: strings
namespace: test.redis
tasks:
  - id: set
    type: io.kestra.plugin.redis.string.Set
    url: "{redis_url}"
    key: {key}
    value: {{name: Ada, plan: pro}}
    serdeType: JSON
    options: {{expirationDuration: PT1H}}
  - id: again
    type: redis.Set
    url: "{redis_url}"
    key: {key}
    value: other
    options: {{mustNotExist: true}}
  - id: get
    type: redis.Get
    url: "{redis_url}"
    key: {key}
    serdeType: JSON
  - id: delete
    type: redis.Delete
    url: "{redis_url}"
    keys: [{key}, {key}-missing]
  - id: gone
    type: redis.Get
    url: "{redis_url}"
    key: {key}
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "again")["outputs"]["written"] is False
    assert task_run(ex, "get")["outputs"]["data"] == {"name": "Ada", "plan": "pro"}
    assert task_run(ex, "delete")["outputs"]["count"] == 1
    assert task_run(ex, "gone")["outputs"]["data"] is None


def test_list_push_pop_publish_stream_add(redis_url, tmp_path):
    key, stream = _name("jobs"), _name("orders")
    flow = f"""
id: lists
namespace: test.redis
tasks:
  - id: push
    type: redis.ListPush
    url: "{redis_url}"
    key: {key}
    serdeType: JSON
    from: [{{n: 1}}, {{n: 2}}, {{n: 3}}]
  - id: pop
    type: io.kestra.plugin.redis.list.ListPop
    url: "{redis_url}"
    key: {key}
    serdeType: JSON
    count: 2
  - id: push_file
    type: redis.ListPush
    url: "{redis_url}"
    key: {key}-copy
    serdeType: JSON
    from: "{{{{ outputs.pop.uri }}}}"
  - id: publish
    type: redis.Publish
    url: "{redis_url}"
    channel: nobody-listens
    from: [a, b]
  - id: add
    type: redis.StreamAdd
    url: "{redis_url}"
    key: {stream}
    serdeType: JSON
    from: [{{order: 1, total: 2.5}}, {{order: 2, total: 3}}]
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "pop")["outputs"]["count"] == 3
    assert task_run(ex, "push_file")["outputs"]["count"] == 3
    assert task_run(ex, "publish")["outputs"]["count"] == 2
    assert len(task_run(ex, "add")["outputs"]["ids"]) == 2

    async def check():
        client = await _client(redis_url)
        try:
            assert [json.loads(v) for v in await client.lrange(f"{key}-copy", 0, -1)] == [{"n": 1}, {"n": 2}, {"n": 3}]
            assert await client.llen(key) == 0
            entries = await client.xrange(stream)
            assert json.loads(entries[0][1][b"total"]) == 2.5
        finally:
            await client.aclose()

    asyncio.run(check())


def test_get_fails_fast_naming_a_down_server(tmp_path):
    port = free_port()
    flow = f"""
id: down
namespace: test.redis
tasks:
  - id: get
    type: redis.Get
    url: "redis://:hunter2@127.0.0.1:{port}/0"
    key: k
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "FAILED"
    text = json.dumps(task_run(ex, "get"))
    assert f"127.0.0.1:{port}/0 is unreachable" in text and "hunter2" not in text


# --- list triggers -------------------------------------------------------------------------

def test_realtime_list_one_execution_per_item_and_crash_replay(redis_url, tmp_path):
    key = _name("jobs")
    h = TriggerHarness(_flow(redis_url, "redis.RealtimeTrigger", f"    key: {key}\n    serdeType: JSON\n"), tmp_path)

    async def scenario():
        client = await _client(redis_url)
        await client.rpush(key, *[json.dumps({"n": i}) for i in range(20)])
        stream = h.listen()
        for _ in range(5):
            (event,) = await _take(stream, 1)
            assert await h.deliver(event) is not None
        (event,) = await _take(stream, 1)
        # crash: the execution exists, the item was never removed from the processing list
        await h.deliver(dataclasses.replace(event, ack=None))
        await stream.aclose()
        assert await client.llen(key) == 14
        h.restart()
        stream = h.listen()
        results = []
        for _ in range(15):
            (event,) = await _take(stream, 1)
            results.append(await h.deliver(event))
        await stream.aclose()
        assert results[0] is None and all(r is not None for r in results[1:])
        assert await client.llen(key) == 0
        assert await client.keys(f"{key}:tiercel:*") == []
        await client.aclose()

    with h:
        asyncio.run(scenario())
        assert [e["trigger"]["variables"]["value"]["n"] for e in h.executions()] == list(range(20))


def test_realtime_list_bad_json_to_dead_letter(redis_url, tmp_path):
    key = _name("jobs")
    h = TriggerHarness(_flow(redis_url, "redis.RealtimeTrigger",
                             f"    key: {key}\n    serdeType: JSON\n    deadLetterKey: {key}:dead\n"), tmp_path)

    async def scenario():
        client = await _client(redis_url)
        await client.rpush(key, '{"n": 1}', "{oops", '{"n": 2}')
        stream = h.listen()
        for _ in range(2):
            (event,) = await _take(stream, 1)
            await h.deliver(event)
        await stream.aclose()
        assert await client.lrange(f"{key}:dead", 0, -1) == [b"{oops"]
        await client.aclose()

    with h:
        asyncio.run(scenario())
        assert [e["trigger"]["variables"]["value"]["n"] for e in h.executions()] == [1, 2]


def test_polling_list_trigger_batch_and_replay(redis_url, tmp_path):
    key = _name("jobs")
    h = TriggerHarness(_flow(redis_url, "redis.Trigger", f"    key: {key}\n    serdeType: JSON\n    maxRecords: 10\n"),
                       tmp_path)

    async def scenario():
        client = await _client(redis_url)
        await client.rpush(key, *[json.dumps({"n": i}) for i in range(15)])
        first = await h.poll_once()
        assert first.variables["count"] == 10
        await h.deliver(dataclasses.replace(first, ack=None))  # crash before the ack
        await first.nack()
        h.restart()
        replay = await h.poll_once()
        assert replay.key == first.key and await h.deliver(replay) is None
        second = await h.poll_once()
        assert second.variables["count"] == 5 and await h.deliver(second) is not None
        assert await h.poll_once() is None
        await client.aclose()
        return first

    with h:
        first = asyncio.run(scenario())
        assert [e["trigger"]["variables"]["count"] for e in h.executions()] == [10, 5]
        with h.open_file(first.variables["uri"]) as f:
            assert [json.loads(line)["n"] for line in f.read().splitlines()] == list(range(10))


# --- stream --------------------------------------------------------------------------------

def test_stream_group_xack_after_creation_and_claim_of_dead_consumer(redis_url, tmp_path):
    key = _name("orders")
    body = (f"    source: STREAM\n    key: {key}\n    serdeType: JSON\n    startId: '0'\n    minIdleTime: PT0.2S\n"
            f"    deadLetterKey: {key}:dead\n")
    first = TriggerHarness(_flow(redis_url, "redis.RealtimeTrigger", body + "    consumerName: first\n"), tmp_path)
    second = TriggerHarness(_flow(redis_url, "redis.RealtimeTrigger", body + "    consumerName: second\n"), tmp_path)

    async def scenario():
        client = await _client(redis_url)
        for i in range(10):
            await client.xadd(key, {"n": json.dumps(i)})
            if i == 4:
                await client.xadd(key, {"n": "{bad"})
        stream = first.listen()
        events = await _take(stream, 10)
        pending = await client.xpending(key, "tiercel")
        assert pending["pending"] == 10  # the bad entry was acknowledged at once; the others wait for their executions
        for event in events[:4]:
            await first.deliver(event)
        for event in events[4:6]:
            await first.deliver(dataclasses.replace(event, ack=None))  # created, then the consumer dies
        await stream.aclose()
        assert (await client.xpending(key, "tiercel"))["pending"] == 6
        # another consumer claims what the dead one left once it is idle long enough
        await asyncio.sleep(0.3)
        stream = second.listen()
        events = await _take(stream, 6)
        results = [await second.deliver(event) for event in events]
        await stream.aclose()
        assert sum(r is None for r in results) == 2
        assert (await client.xpending(key, "tiercel"))["pending"] == 0
        (dead,) = await client.xrange(f"{key}:dead")
        assert dead[1][b"n"] == b"{bad" and b"JSON" in dead[1][b"error"]
        await client.aclose()

    with first, second:
        asyncio.run(scenario())
        assert sorted(e["trigger"]["variables"]["value"]["n"] for e in first.executions()) == list(range(10))


def test_stream_restart_rereads_own_pending(redis_url, tmp_path):
    key = _name("orders")
    h = TriggerHarness(_flow(redis_url, "redis.RealtimeTrigger",
                             f"    source: STREAM\n    key: {key}\n    startId: '0'\n    consumerName: me\n"), tmp_path)

    async def scenario():
        client = await _client(redis_url)
        for i in range(3):
            await client.xadd(key, {"v": str(i)})
        stream = h.listen()
        events = await _take(stream, 3)
        await h.deliver(dataclasses.replace(events[0], ack=None))
        await stream.aclose()
        h.restart()
        stream = h.listen()
        again = await _take(stream, 3)
        assert [e.key for e in again] == [e.key for e in events]
        assert [await h.deliver(e) is None for e in again] == [True, False, False]
        await stream.aclose()
        await client.aclose()

    with h:
        asyncio.run(scenario())
        assert len(h.executions()) == 3


def test_channel_messages_at_most_once(redis_url, tmp_path):
    channel = _name("news")
    h = TriggerHarness(_flow(redis_url, "redis.RealtimeTrigger", f"    source: CHANNEL\n    key: {channel}\n    serdeType: JSON\n"),
                       tmp_path)

    async def scenario():
        client = await _client(redis_url)
        stream = h.listen()
        receive = asyncio.ensure_future(_take(stream, 2))
        while not await client.pubsub_numsub(channel) or (await client.pubsub_numsub(channel))[0][1] == 0:
            await asyncio.sleep(0.01)
        for payload in ('{"n": 1}', "{bad", '{"n": 2}'):
            await client.publish(channel, payload)
        for event in await receive:
            await h.deliver(event)
        await stream.aclose()
        await client.aclose()

    with h:
        asyncio.run(scenario())
        assert [e["trigger"]["variables"]["value"]["n"] for e in h.executions()] == [1, 2]


def test_realtime_fails_fast_naming_a_down_server(tmp_path):
    port = free_port()
    h = TriggerHarness(_flow(f"redis://127.0.0.1:{port}/0", "redis.RealtimeTrigger", "    key: k\n"), tmp_path)

    async def scenario():
        with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}/0 is unreachable"):
            await asyncio.wait_for(h.listen().__anext__(), 10)

    with h:
        asyncio.run(scenario())
