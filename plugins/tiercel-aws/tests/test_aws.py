"""aws.* against a private moto server (S3 and SQS on loopback; one bucket or queue per test)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
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


def test_s3_upload_list_download_delete(s3_endpoint, tmp_path):
    bucket = _bucket(s3_endpoint)
    flow = f"""
id: s3
namespace: test.aws
tasks:
  - id: archive_bucket
    type: io.kestra.plugin.aws.s3.CreateBucket
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}-archive
  - id: again
    type: aws.s3.CreateBucket
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}-archive
  - id: report
    type: core.OutputValues
    values: {{text: "hello from tiercel"}}
  - id: upload
    type: io.kestra.plugin.aws.s3.Upload
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    key: reports/a.txt
    from: "{{{{ outputs.report.values.text }}}}"
  - id: list
    type: aws.s3.List
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    prefix: reports/
  - id: download
    type: aws.s3.Download
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    key: reports/a.txt
  - id: copy
    type: aws.s3.Upload
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    key: reports/b.txt
    from: "{{{{ outputs.download.uri }}}}"
  - id: archive
    type: io.kestra.plugin.aws.s3.Copy
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    key: reports/a.txt
    toBucket: {bucket}-archive
    toKey: 2026/a.txt
  - id: delete
    type: aws.s3.Delete
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    key: reports/a.txt
  - id: missing
    type: aws.s3.Download
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    key: reports/a.txt
    allowFailure: true
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "WARNING", ex
    assert [o["key"] for o in task_run(ex, "list")["outputs"]["objects"]] == ["reports/a.txt"]
    assert read_file(task_run(ex, "download")["outputs"]["uri"], tmp_path) == b"hello from tiercel"
    body = _client(s3_endpoint, "s3").get_object(Bucket=bucket, Key="reports/b.txt")["Body"].read()
    assert body == b"hello from tiercel"
    archived = _client(s3_endpoint, "s3").get_object(Bucket=f"{bucket}-archive", Key="2026/a.txt")["Body"].read()
    assert archived == b"hello from tiercel"
    assert task_run(ex, "archive_bucket")["outputs"]["created"] is True
    assert task_run(ex, "again")["outputs"]["created"] is False
    assert "NoSuchKey" in json.dumps(task_run(ex, "missing")) or "404" in json.dumps(task_run(ex, "missing"))


def test_s3_storage_streams_and_refuses_escapes(s3_endpoint):
    from tiercel_aws.storage import S3Storage

    from tiercel.api import StorageError

    storage = S3Storage(bucket=_bucket(s3_endpoint), prefix="tiercel/prod", endpointOverride=s3_endpoint)
    data = bytes(range(256)) * 40_000  # 10 MiB: two multipart parts
    assert storage.put("ns/exec/big.bin", io.BytesIO(data)) == len(data)
    with storage.open("ns/exec/big.bin") as f:
        assert f.read() == data
    assert storage.list("ns") == ["ns/exec/big.bin"] and storage.size("ns/exec/big.bin") == len(data)
    keys = [o["Key"] for o in _client(s3_endpoint, "s3").list_objects_v2(Bucket=storage.bucket)["Contents"]]
    assert keys == ["tiercel/prod/ns/exec/big.bin"]
    for bad in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(StorageError):
            storage.put(bad, io.BytesIO(b"x"))
    with pytest.raises(FileNotFoundError):
        storage.open("ns/missing")


def test_a_flow_runs_with_s3_as_internal_storage(s3_endpoint, tmp_path, monkeypatch):
    """TIERCEL_STORAGE=s3://…: the files tasks store land in the bucket (the resolve_storage hook)."""
    bucket = _bucket(s3_endpoint)
    _client(s3_endpoint, "s3").put_object(Bucket=bucket, Key="in/data.csv", Body=b"a,b\n1,2\n")
    monkeypatch.setenv("TIERCEL_STORAGE", f"s3://{bucket}/tiercel?endpoint={s3_endpoint}")
    flow = f"""
id: stored
namespace: test.aws
tasks:
  - id: download
    type: aws.s3.Download
    endpointOverride: "{s3_endpoint}"
    bucket: {bucket}
    key: in/data.csv
"""
    ex = run_flow(flow, home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    uri = task_run(ex, "download")["outputs"]["uri"]
    assert read_file(uri, tmp_path) == b"a,b\n1,2\n"
    listing = _client(s3_endpoint, "s3").list_objects_v2(Bucket=bucket, Prefix="tiercel/")
    assert [o["Key"].rsplit("/", 1)[-1] for o in listing.get("Contents", ())] == ["data.csv"]
    assert not (tmp_path / "storage").exists() or not any(p.is_file() for p in (tmp_path / "storage").rglob("*"))


def _flow(endpoint: str, queue_url: str, extra: str = "") -> str:
    return f"""
id: on_message
namespace: test.aws
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value }}}}"
triggers:
  - id: messages
    type: io.kestra.plugin.aws.sqs.RealtimeTrigger
    endpointOverride: "{endpoint}"
    queueUrl: "{queue_url}"
    serdeType: JSON
    waitTime: PT1S
{extra}"""


def test_sqs_publish_then_trigger_deletes_only_after_creation_and_dedupes(s3_endpoint, tmp_path):
    queue = _queue(s3_endpoint)
    ex = run_flow(f"""
id: send
namespace: test.aws
tasks:
  - id: publish
    type: aws.sqs.Publish
    endpointOverride: "{s3_endpoint}"
    queueUrl: "{queue}"
    serdeType: JSON
    from: [{{n: 0}}, {{n: 1}}, {{n: 2}}, {{n: 3}}, {{n: 4}}, {{n: 5}}, {{n: 6}}, {{n: 7}}, {{n: 8}}, {{n: 9}}, {{n: 10}}, {{n: 11}}]
""", home=tmp_path / "sender")
    assert task_run(ex, "publish")["outputs"]["messagesCount"] == 12
    h = TriggerHarness(_flow(s3_endpoint, queue, "    visibilityTimeout: PT2S\n"), tmp_path)

    async def scenario():
        events, stream = await h.events(12)
        for event in events[:8]:
            assert await h.deliver(event) is not None
        for event in events[8:10]:  # created, then the server dies before deleting
            await h.deliver(dataclasses.replace(event, ack=None))
        held = events[10:]
        await asyncio.sleep(2.5)  # longer than the visibility timeout: kept hidden while held
        assert "Messages" not in _client(s3_endpoint, "sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=0)
        for event in held:
            await h.deliver(event)
        await stream.aclose()  # hands back the two never deleted
        h.restart()
        again, stream = await h.events(2)
        assert [await h.deliver(e) for e in again] == [None, None]
        await stream.aclose()

    with h:
        asyncio.run(scenario())
        assert sorted(e["trigger"]["variables"]["value"]["n"] for e in h.executions()) == list(range(12))
    attrs = _client(s3_endpoint, "sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_sqs_store_down_releases_and_bad_json_to_dead_letter_queue(s3_endpoint, tmp_path):
    queue, dead = _queue(s3_endpoint), _queue(s3_endpoint)
    sqs = _client(s3_endpoint, "sqs")
    for body in ('{"n": 1}', "{oops"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    h = TriggerHarness(_flow(s3_endpoint, queue, f"    deadLetterQueueUrl: \"{dead}\"\n"), tmp_path)

    async def scenario():
        stream = h.listen()
        first = await asyncio.wait_for(stream.__anext__(), 10)
        with h.store_down("database is down"), pytest.raises(RuntimeError, match="database is down"):
            await h.deliver(first)  # visible again at once
        again = await asyncio.wait_for(stream.__anext__(), 10)
        assert again.key == first.key and again.variables["receiveCount"] == 2
        await h.deliver(again)
        await stream.aclose()

    with h:
        asyncio.run(scenario())
        assert [e["trigger"]["variables"]["value"] for e in h.executions()] == [{"n": 1}]
    parked = sqs.receive_message(QueueUrl=dead, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"][0]
    assert parked["Body"] == "{oops" and "JSON" in parked["MessageAttributes"]["tiercel.error"]["StringValue"]
