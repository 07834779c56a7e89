"""aws.s3.Downloads / DeleteList, aws.sqs.Consume and the polling triggers aws.sqs.Trigger and aws.s3.Trigger,
against a private moto server: a crash between an execution's creation and its ack starts nothing twice."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid

import pytest

from tiercel.testing import TriggerHarness, read_file, run_flow, task_run

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


def _client(endpoint: str, service: str):
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def _bucket(endpoint: str) -> str:
    name = f"b-{uuid.uuid4().hex[:8]}"
    _client(endpoint, "s3").create_bucket(Bucket=name)
    return name


def _queue(endpoint: str) -> str:
    return _client(endpoint, "sqs").create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def _keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    found = _client(endpoint, "s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", ())
    return sorted(o["Key"] for o in found)


def _lines(uri: str, home) -> list[dict]:
    return [json.loads(line) for line in read_file(uri, home).splitlines()]


def test_s3_downloads_moves_and_delete_list_empties(s3_endpoint, tmp_path):
    bucket = _bucket(s3_endpoint)
    s3 = _client(s3_endpoint, "s3")
    for key, body in {"in/a.csv": b"1", "in/b.csv": b"22", "in/notes.txt": b"n", "in/sub/": b"", "in/sub/c.csv": b"333"}.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    ex = run_flow(f"""
id: many
namespace: test.aws
tasks:
  - id: downloads
    type: io.kestra.plugin.aws.s3.Downloads
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    prefix: in/
    regexp: ".*\\\\.csv"
    filter: FILES
    action: MOVE
    moveTo: {{key: done/, bucket: {bucket}}}
  - id: keep
    type: aws.s3.Downloads
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    prefix: in/
    delimiter: /
  - id: delete
    type: io.kestra.plugin.aws.s3.DeleteList
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    prefix: done/
  - id: again
    type: aws.s3.DeleteList
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    prefix: done/
    errorOnEmpty: true
    allowFailure: true
""", home=tmp_path)
    assert ex["state"] == "WARNING", ex
    got = task_run(ex, "downloads")["outputs"]
    assert [o["key"] for o in got["objects"]] == ["in/a.csv", "in/b.csv", "in/sub/c.csv"] and got["count"] == 3
    assert [read_file(got["outputFiles"][k], tmp_path) for k in ("in/a.csv", "in/b.csv", "in/sub/c.csv")] == [b"1", b"22", b"333"]
    assert [o["key"] for o in task_run(ex, "keep")["outputs"]["objects"]] == ["in/notes.txt"]  # in/sub/ is rolled up
    assert task_run(ex, "delete")["outputs"] == {"count": 3, "size": 6}
    assert "no object matches" in json.dumps(task_run(ex, "again"))
    assert _keys(s3_endpoint, bucket) == ["in/notes.txt", "in/sub/"]


def test_sqs_consume_takes_max_records_and_deletes_only_them(s3_endpoint, tmp_path):
    queue = _queue(s3_endpoint)
    sqs = _client(s3_endpoint, "sqs")
    for n in range(15):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": n}),
                         MessageAttributes={"source": {"DataType": "String", "StringValue": "test"}})
    ex = run_flow(f"""
id: consume
namespace: test.aws
tasks:
  - id: consume
    type: io.kestra.plugin.aws.sqs.Consume
    endpointOverride: "{s3_endpoint}"
    queueUrl: "{queue}"
    serdeType: JSON
    maxRecords: 12
  - id: rest
    type: aws.sqs.Consume
    endpointOverride: "{s3_endpoint}"
    queueUrl: "{queue}"
    serdeType: JSON
    pollDuration: PT1S
""", home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    first, rest = task_run(ex, "consume")["outputs"], task_run(ex, "rest")["outputs"]
    assert first["count"] == 12 and rest["count"] == 3
    lines = _lines(first["uri"], tmp_path) + _lines(rest["uri"], tmp_path)
    assert sorted(line["value"]["n"] for line in lines) == list(range(15))
    assert lines[0]["attributes"] == {"source": "test"} and lines[0]["receiveCount"] == 1
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_sqs_consume_unreadable_body_fails_and_deletes_nothing(s3_endpoint, tmp_path):
    queue = _queue(s3_endpoint)
    sqs = _client(s3_endpoint, "sqs")
    for body in ('{"n": 1}', "{oops"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    ex = run_flow(f"""
id: consume
namespace: test.aws
tasks:
  - id: consume
    type: aws.sqs.Consume
    endpointOverride: "{s3_endpoint}"
    queueUrl: "{queue}"
    serdeType: JSON
    visibilityTimeout: PT1S
    pollDuration: PT1S
""", home=tmp_path)
    assert ex["state"] == "FAILED" and "JSON" in json.dumps(task_run(ex, "consume")), ex
    time.sleep(1.5)
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "2"


def _sqs_flow(endpoint: str, queue: str, extra: str = "") -> str:
    return f"""
id: batches
namespace: test.aws
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.count }}}}"
triggers:
  - id: batch
    type: io.kestra.plugin.aws.sqs.Trigger
    endpointOverride: "{endpoint}"
    queueUrl: "{queue}"
    serdeType: JSON
    waitTime: PT1S
    interval: PT1S
{extra}"""


def test_sqs_trigger_crash_after_creation_starts_nothing_twice(s3_endpoint, tmp_path):
    queue = _queue(s3_endpoint)
    sqs = _client(s3_endpoint, "sqs")
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(n), "MessageBody": json.dumps({"n": n})} for n in range(10)])
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(n), "MessageBody": json.dumps({"n": n})} for n in range(10, 15)])
    h = TriggerHarness(_sqs_flow(s3_endpoint, queue, "    maxRecords: 12\n    visibilityTimeout: PT2S\n"), tmp_path)

    async def crash() -> str:
        event = await h.poll_once()
        assert event.variables["count"] == 12
        await asyncio.sleep(3)  # longer than the visibility timeout: kept hidden until the ack
        assert len(sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=1).get("Messages", ())) == 3
        await h.deliver(dataclasses.replace(event, ack=None))  # created; the server dies before deleting
        return event.key

    async def after_restart(key: str) -> None:
        h.restart()
        replay = await h.poll_once()
        assert replay.key == key and replay.variables["count"] == 12
        assert await h.deliver(replay) is None  # deduplicated, then acknowledged
        await asyncio.sleep(2.5)  # the 12 come back (never deleted): remembered, deleted, nothing started
        later = await h.poll_once()
        assert later.variables["count"] == 3  # only the 3 another consumer had released
        assert await h.deliver(later) is not None
        assert await h.poll_once() is None

    with h:
        key = asyncio.run(crash())
        asyncio.run(after_restart(key))
        runs = h.executions()
        assert [r["trigger"]["variables"]["count"] for r in runs] == [12, 3]
        values = [line["value"]["n"] for r in runs for line in _lines(r["trigger"]["variables"]["uri"], tmp_path)]
        assert sorted(values) == list(range(15))
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_sqs_trigger_store_down_keeps_the_batch_and_dead_letters_bad_bodies(s3_endpoint, tmp_path):
    queue, dead = _queue(s3_endpoint), _queue(s3_endpoint)
    sqs = _client(s3_endpoint, "sqs")
    for body in ('{"n": 1}', "{oops", '{"n": 2}'):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    h = TriggerHarness(_sqs_flow(s3_endpoint, queue, f'    deadLetterQueueUrl: "{dead}"\n'), tmp_path)

    async def scenario() -> None:
        event = await h.poll_once()
        assert event.variables["count"] == 2
        with h.store_down(), pytest.raises(RuntimeError):
            await h.deliver(event)  # released at once; the batch stays in the trigger state
        h.restart()
        again = await h.poll_once()
        assert again.key == event.key and await h.deliver(again) is not None
        assert await h.poll_once() is None  # the released two came back: delivered already, deleted

    with h:
        asyncio.run(scenario())
        assert len(h.executions()) == 1
    parked = sqs.receive_message(QueueUrl=dead, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"][0]
    assert parked["Body"] == "{oops" and "JSON" in parked["MessageAttributes"]["tiercel.error"]["StringValue"]
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def _s3_flow(endpoint: str, bucket: str, extra: str) -> str:
    return f"""
id: objects
namespace: test.aws
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.count }}}}"
triggers:
  - id: watch
    type: io.kestra.plugin.aws.s3.Trigger
    endpointOverride: "{endpoint}"
    bucket: {bucket}
    prefix: in/
    interval: PT1S
{extra}"""


def test_s3_trigger_moves_each_object_once_even_after_a_crash(s3_endpoint, tmp_path):
    bucket = _bucket(s3_endpoint)
    s3 = _client(s3_endpoint, "s3")
    for n in range(3):
        s3.put_object(Bucket=bucket, Key=f"in/{n}.csv", Body=f"row {n}".encode())
    h = TriggerHarness(_s3_flow(s3_endpoint, bucket, "    action: MOVE\n    moveTo: {key: archive}\n"), tmp_path)

    async def scenario() -> None:
        event = await h.poll_once()
        objects = event.variables["objects"]
        assert [o["key"] for o in objects] == ["in/0.csv", "in/1.csv", "in/2.csv"]
        assert [h.open_file(o["uri"]).read() for o in objects] == [b"row 0", b"row 1", b"row 2"]
        await h.deliver(dataclasses.replace(event, ack=None))  # created; the server dies before moving
        s3.put_object(Bucket=bucket, Key="in/3.csv", Body=b"row 3")  # arrives meanwhile
        h.restart()
        replay = await h.poll_once()
        assert replay.key == event.key and await h.deliver(replay) is None
        assert _keys(s3_endpoint, bucket) == ["archive/0.csv", "archive/1.csv", "archive/2.csv", "in/3.csv"]
        new = await h.poll_once()
        assert [o["key"] for o in new.variables["objects"]] == ["in/3.csv"] and await h.deliver(new) is not None
        assert await h.poll_once() is None

    with h:
        asyncio.run(scenario())
        assert [r["trigger"]["variables"]["count"] for r in h.executions()] == [3, 1]
    assert _keys(s3_endpoint, bucket, "in/") == []


def test_s3_trigger_none_remembers_objects_and_sees_a_rewrite(s3_endpoint, tmp_path):
    bucket = _bucket(s3_endpoint)
    s3 = _client(s3_endpoint, "s3")
    s3.put_object(Bucket=bucket, Key="in/a.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="in/skip.txt", Body=b"-")
    h = TriggerHarness(_s3_flow(s3_endpoint, bucket, '    regexp: ".*\\\\.json"\n'), tmp_path)

    async def scenario() -> None:
        first = await h.poll_once()
        assert [o["key"] for o in first.variables["objects"]] == ["in/a.json"] and await h.deliver(first)
        assert await h.poll_once() is None
        s3.put_object(Bucket=bucket, Key="in/a.json", Body=b'{"v": 2}')  # written again: new
        s3.put_object(Bucket=bucket, Key="in/b.json", Body=b"[]")
        second = await h.poll_once()
        assert [o["key"] for o in second.variables["objects"]] == ["in/a.json", "in/b.json"]
        assert await h.deliver(second)
        s3.delete_object(Bucket=bucket, Key="in/b.json")
        assert await h.poll_once() is None
        assert set(h.ctx.state["seen"]) == {"in/a.json"}  # forgotten once gone

    with h:
        asyncio.run(scenario())
        assert len(h.executions()) == 2
    assert _keys(s3_endpoint, bucket) == ["in/a.json", "in/skip.txt"]
