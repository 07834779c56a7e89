"""nats.* against a private nats-server with JetStream (one stream per test)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest

from tiercel.testing import TriggerHarness, free_port, read_file, run_flow, task_run


async def _stream(url: str, messages: list[bytes] = (), subject: str | None = None) -> str:
    """A new stream storing `<name>.>`; publish *messages* on `<name>.new`; returns the name."""
    import nats
    from nats.js.api import StreamConfig

    name = subject or f"s{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        if subject is None:
            await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
        for payload in messages:
            await js.publish(f"{name}.new", payload)
    finally:
        await nc.close()
    return name


def _flow(url: str, subject: str, kind: str = "nats.RealtimeTrigger", extra: str = "") -> str:
    return f"""
id: on_message
namespace: test.nats
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value }}}}"
triggers:
  - id: messages
    type: {kind}
    url: "{url}"
    subject: "{subject}"
    serdeType: JSON
{extra}"""


def test_publish_consume_request_and_key_value(nats_url, tmp_path):
    name = asyncio.run(_stream(nats_url))
    flow = f"""
id: round_trip
namespace: test.nats
tasks:
  - id: publish
    type: io.kestra.plugin.nats.Produce
    url: "{nats_url}"
    subject: {name}.orders
    serdeType: JSON
    jetStream: true
    headers: {{source: test}}
    from: [{{n: 1}}, {{n: 2}}, {{n: 3}}]
  - id: consume
    type: nats.Consume
    url: "{nats_url}"
    subject: "{name}.>"
    durableName: report
    serdeType: JSON
    pollDuration: PT0.3S
  - id: again
    type: io.kestra.plugin.nats.Consume
    url: "{nats_url}"
    subject: "{name}.>"
    durableName: report
    pollDuration: PT0.3S
  - id: put
    type: io.kestra.plugin.nats.kv.Put
    url: "{nats_url}"
    bucket: {name}
    key: config
    serdeType: JSON
    value: {{retries: 3}}
  - id: get
    type: nats.kv.Get
    url: "{nats_url}"
    bucket: {name}
    key: config
    serdeType: JSON
  - id: delete
    type: nats.kv.Delete
    url: "{nats_url}"
    bucket: {name}
    key: config
  - id: gone
    type: nats.kv.Get
    url: "{nats_url}"
    bucket: {name}
    key: config
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "publish")["outputs"]["messagesCount"] == 3
    consume = task_run(ex, "consume")["outputs"]
    assert consume["count"] == 3
    assert task_run(ex, "again")["outputs"]["count"] == 0  # the durable consumer acknowledged them
    records = [json.loads(line) for line in read_file(consume["uri"], tmp_path, "test.nats").splitlines()]
    assert [r["value"]["n"] for r in records] == [1, 2, 3] and records[0]["headers"]["source"] == "test"
    assert task_run(ex, "get")["outputs"]["value"] == {"retries": 3}
    assert task_run(ex, "gone")["outputs"]["value"] is None


def test_request_gets_the_reply_of_a_service(nats_url, tmp_path):
    import nats

    subject = f"prices.{uuid.uuid4().hex[:8]}"
    flow = f"""
id: ask
namespace: test.nats
tasks:
  - id: price
    type: nats.Request
    url: "{nats_url}"
    subject: {subject}
    serdeType: JSON
    data: {{sku: A-1}}
    timeout: PT5S
  - id: nobody
    type: nats.Request
    url: "{nats_url}"
    subject: {subject}.unanswered
    allowFailure: true
"""
    answered = asyncio.Event()

    async def scenario():
        nc = await nats.connect(nats_url)

        async def serve(msg):
            await msg.respond(json.dumps({"sku": json.loads(msg.data)["sku"], "amount": 9.5}).encode())

        await nc.subscribe(subject, cb=serve)
        await nc.flush()
        ex = await asyncio.to_thread(run_flow, flow, None, tmp_path)
        answered.set()
        await nc.close()
        return ex

    ex = asyncio.run(scenario())
    assert task_run(ex, "price")["outputs"]["value"] == {"sku": "A-1", "amount": 9.5}
    assert "nobody answers requests" in json.dumps(task_run(ex, "nobody"))


def test_publish_fails_fast_naming_a_down_server(tmp_path):
    port = free_port()
    flow = f"""
id: down
namespace: test.nats
tasks:
  - id: publish
    type: nats.Publish
    url: nats://127.0.0.1:{port}
    password: hunter2
    username: me
    subject: x
    from: x
"""
    started = time.monotonic()
    ex = run_flow(flow, home=tmp_path)
    text = json.dumps(task_run(ex, "publish"))
    assert ex["state"] == "FAILED" and f"NATS at nats://127.0.0.1:{port} is unreachable" in text and "hunter2" not in text
    assert time.monotonic() - started < 10


def test_realtime_ack_after_creation_crash_redelivery_deduplicated(nats_url, tmp_path):
    name = asyncio.run(_stream(nats_url, [json.dumps({"n": i}).encode() for i in range(20)]))
    h = TriggerHarness(_flow(nats_url, f"{name}.>", extra="    ackWait: PT1S\n"), tmp_path)

    async def scenario():
        events, stream = await h.events(20)
        for event in events[:12]:
            assert await h.deliver(event) is not None
        for event in events[12:16]:  # created, then the server dies before acknowledging
            await h.deliver(dataclasses.replace(event, ack=None))
        await stream.aclose()
        h.restart()  # after ackWait, JetStream delivers the 8 unacknowledged again
        again, stream = await h.events(8)
        results = [await h.deliver(event) for event in again]
        assert sum(r is None for r in results) == 4 and all(e.variables["delivered"] == 2 for e in again)
        with pytest.raises(asyncio.TimeoutError):  # everything acknowledged: nothing more, even after ackWait
            await asyncio.wait_for(stream.__anext__(), 1.5)
        await stream.aclose()

    with h:
        asyncio.run(scenario())
        executions = h.executions()
        assert sorted(e["trigger"]["variables"]["value"]["n"] for e in executions) == list(range(20))
        assert len({e["dedupeKey"] for e in executions}) == 20


def test_realtime_store_down_redelivers_and_bad_json_to_dead_letter(nats_url, tmp_path):
    import nats

    name = asyncio.run(_stream(nats_url))
    h = TriggerHarness(_flow(nats_url, f"{name}.>", extra=f"    deadLetterSubject: {name}.dead.x\n"), tmp_path)

    async def scenario():
        nc = await nats.connect(nats_url)
        dead = await nc.subscribe(f"{name}.dead.x")
        js = nc.jetstream()
        for payload in (b'{"n": 1}', b"{oops", b'{"n": 2}'):
            await js.publish(f"{name}.new", payload)
        stream = h.listen()
        first = await asyncio.wait_for(stream.__anext__(), 10)
        with h.store_down("database is down"), pytest.raises(RuntimeError, match="database is down"):
            await h.deliver(first)  # negatively acknowledged: delivered again at once
        second = await asyncio.wait_for(stream.__anext__(), 10)
        await h.deliver(second)
        again = await asyncio.wait_for(stream.__anext__(), 10)
        assert again.key == first.key
        await h.deliver(again)
        await stream.aclose()
        parked = await dead.next_msg(timeout=5)
        assert parked.data == b"{oops" and "JSON" in parked.headers["Tiercel-Error"]
        await nc.close()

    with h:
        asyncio.run(scenario())
        assert sorted(e["trigger"]["variables"]["value"]["n"] for e in h.executions()) == [1, 2]


def test_polling_trigger_position_moves_only_after_creation(nats_url, tmp_path):
    name = asyncio.run(_stream(nats_url, [json.dumps({"n": i}).encode() for i in range(10)]))
    h = TriggerHarness(_flow(nats_url, f"{name}.>", "nats.Trigger", "    maxRecords: 50\n"), tmp_path)

    async def scenario():
        event = await h.poll_once()
        assert event.variables["count"] == 10
        await h.deliver(dataclasses.replace(event, ack=None))  # crash before the ack
        await _stream(nats_url, [b'{"n": 100}'], subject=name)  # arrives meanwhile
        h.restart()
        replay = await h.poll_once()
        assert replay.key == event.key and replay.variables["count"] == 10 and await h.deliver(replay) is None
        follow = await h.poll_once()
        assert follow.variables["count"] == 1 and await h.deliver(follow) is not None
        assert await h.poll_once() is None
        return event

    with h:
        event = asyncio.run(scenario())
        assert [e["trigger"]["variables"]["count"] for e in h.executions()] == [10, 1]
        with h.open_file(event.variables["uri"]) as f:
            assert [json.loads(line)["value"]["n"] for line in f.read().splitlines()] == list(range(10))


def test_realtime_fails_fast_naming_a_down_server(tmp_path):
    port = free_port()
    h = TriggerHarness(_flow(f"nats://127.0.0.1:{port}", "x.>"), tmp_path)

    async def scenario():
        with pytest.raises(ConnectionError, match=f"NATS at nats://127.0.0.1:{port} is unreachable"):
            await asyncio.wait_for(h.listen().__anext__(), 10)

    with h:
        asyncio.run(scenario())
