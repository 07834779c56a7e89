"""S3 and SQS tasks (boto3 calls run in a thread: the event loop never blocks)."""

from __future__ import annotations

import asyncio
import posixpath
import re
import time
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from tiercel.api import Example, RunContext, Task, TaskError
from tiercel.messaging import (
    FROM_DESCRIPTION,
    SERDE_DESCRIPTION,
    DecodeError,
    SerdeType,
    deserialize,
    items,
    json_lines,
    serialize,
)
from tiercel_aws._common import AwsConnection

_S3_EXAMPLE = """\
id: s3_round_trip
namespace: company.team
inputs:
  - id: endpoint
    type: STRING
    required: false
  - id: bucket
    type: STRING
    defaults: my-bucket
tasks:
  - id: bucket
    type: aws.s3.CreateBucket
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
  - id: report
    type: core.OutputValues
    values:
      day: "{{ now() }}"
  - id: upload
    type: aws.s3.Upload
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
    key: "reports/{{ execution.id }}.txt"
    from: "{{ outputs.report.values.day }}"
  - id: list
    type: aws.s3.List
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
    prefix: reports/
  - id: download
    type: aws.s3.Download
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
    key: "reports/{{ execution.id }}.txt"
  - id: copy
    type: aws.s3.Copy
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
    key: "reports/{{ execution.id }}.txt"
    toKey: "archive/{{ execution.id }}.txt"
  - id: delete
    type: aws.s3.Delete
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
    key: "reports/{{ execution.id }}.txt"
"""

_SQS_EXAMPLE = """\
id: sqs_publish
namespace: company.team
inputs:
  - id: endpoint
    type: STRING
    required: false
  - id: queueUrl
    type: STRING
    defaults: https://sqs.eu-west-1.amazonaws.com/123456789012/orders
tasks:
  - id: publish
    type: aws.sqs.Publish
    endpointOverride: "{{ inputs.endpoint }}"
    queueUrl: "{{ inputs.queueUrl }}"
    serdeType: JSON
    from:
      - {sku: A-1, quantity: 2}
      - {sku: B-7, quantity: 1}
"""


def _aws_error(what: str, exc: Exception) -> TaskError:
    return TaskError(f"{what}: {type(exc).__name__}: {exc}")


class _S3(AwsConnection, Task):
    bucket: str = Field(description="Bucket name.")

    async def _call(self, what: str, fn: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn)
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(f"S3 {what}", exc) from None


class S3Upload(_S3):
    """Upload a file (a `tiercel://` URI, streamed in parts) or a text value to `s3://bucket/key`."""

    type: ClassVar[str] = "aws.s3.Upload"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.s3.Upload",)
    examples: ClassVar[list[Example]] = [Example("Upload, list, download and delete an object", _S3_EXAMPLE)]

    key: str = Field(description="Object key.")
    from_: str = Field(alias="from", description="A `tiercel://` file (streamed), or text to store as the object.")
    contentType: str | None = Field(None, description="Content-Type of the object.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        s3 = self.client("s3")
        extra = {"ContentType": self.contentType} if self.contentType else None

        def upload() -> None:
            if self.from_.startswith("tiercel://"):
                with ctx.open_file(self.from_) as stream:
                    s3.upload_fileobj(stream, self.bucket, self.key, ExtraArgs=extra)
            else:
                s3.put_object(Bucket=self.bucket, Key=self.key, Body=self.from_.encode(), **(extra or {}))

        await self._call(f"upload to s3://{self.bucket}/{self.key}", upload)
        return {"bucket": self.bucket, "key": self.key, "uri": f"s3://{self.bucket}/{self.key}"}


class S3Download(_S3):
    """Download `s3://bucket/key` into internal storage (streamed); outputs its `tiercel://` URI."""

    type: ClassVar[str] = "aws.s3.Download"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.s3.Download",)
    examples: ClassVar[list[Example]] = [Example("Upload, list, download and delete an object", _S3_EXAMPLE)]

    key: str = Field(description="Object key.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        s3 = self.client("s3")

        def download() -> tuple[str, int]:
            body = s3.get_object(Bucket=self.bucket, Key=self.key)
            return ctx.put_file(body["Body"], self.key.rsplit("/", 1)[-1] or "object"), int(body["ContentLength"])

        uri, size = await self._call(f"download of s3://{self.bucket}/{self.key}", download)
        return {"uri": uri, "contentLength": size}


class S3List(_S3):
    """List the objects under a prefix: `objects` ({key, size, lastModified, etag}) and `count`."""

    type: ClassVar[str] = "aws.s3.List"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.s3.List",)
    examples: ClassVar[list[Example]] = [Example("Upload, list, download and delete an object", _S3_EXAMPLE)]

    prefix: str = Field("", description="Key prefix.")
    maxKeys: int = Field(1000, ge=1, description="Most objects listed.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        s3 = self.client("s3")

        def listing() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", ()):
                    found.append({"key": obj["Key"], "size": obj["Size"], "lastModified": obj["LastModified"].isoformat(),
                                  "etag": obj.get("ETag", "").strip('"')})
                    if len(found) >= self.maxKeys:
                        return found
            return found

        objects = await self._call(f"list of s3://{self.bucket}/{self.prefix}", listing)
        return {"objects": objects, "count": len(objects)}


class S3Delete(_S3):
    """Delete an object."""

    type: ClassVar[str] = "aws.s3.Delete"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.s3.Delete",)
    examples: ClassVar[list[Example]] = [Example("Upload, list, download and delete an object", _S3_EXAMPLE)]

    key: str = Field(description="Object key.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        s3 = self.client("s3")
        await self._call(f"delete of s3://{self.bucket}/{self.key}", lambda: s3.delete_object(Bucket=self.bucket, Key=self.key))
        return {"bucket": self.bucket, "key": self.key}


class SqsPublish(AwsConnection, Task):
    """Send messages to an SQS queue (in batches of 10); outputs `messagesCount` and their `messageIds`."""

    type: ClassVar[str] = "aws.sqs.Publish"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.sqs.Publish",)
    examples: ClassVar[list[Example]] = [Example("Send JSON messages", _SQS_EXAMPLE)]

    queueUrl: str = Field(description="URL of the queue.")
    from_: Any = Field(alias="from", description=FROM_DESCRIPTION)
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        sqs = self.client("sqs")
        bodies = [serialize(self.serdeType, v).decode() for v in items(ctx, self.from_)]
        ids: list[str] = []
        try:
            for start in range(0, len(bodies), 10):
                entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:start + 10])]
                answer = await asyncio.to_thread(sqs.send_message_batch, QueueUrl=self.queueUrl, Entries=entries)
                if answer.get("Failed"):
                    raise TaskError(f"SQS refused {len(answer['Failed'])} messages: {answer['Failed'][0].get('Message')}")
                ids += [e["MessageId"] for e in sorted(answer["Successful"], key=lambda e: int(e["Id"]))]
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(f"SQS send to {self.queueUrl}", exc) from None
        ctx.metric("records", len(ids))
        return {"messagesCount": len(ids), "messageIds": ids}


class S3Copy(_S3):
    """Copy an object (server-side, within S3), to another key or bucket."""

    type: ClassVar[str] = "aws.s3.Copy"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.s3.Copy",)
    examples: ClassVar[list[Example]] = [Example("Upload, list, download, copy and delete an object", _S3_EXAMPLE)]

    key: str = Field(description="Key of the object to copy.")
    toBucket: str | None = Field(None, description="Destination bucket (default: the same bucket).")
    toKey: str = Field(description="Destination key.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        s3 = self.client("s3")
        target = self.toBucket or self.bucket
        await self._call(f"copy of s3://{self.bucket}/{self.key} to s3://{target}/{self.toKey}",
                         lambda: s3.copy({"Bucket": self.bucket, "Key": self.key}, target, self.toKey))
        return {"bucket": target, "key": self.toKey, "uri": f"s3://{target}/{self.toKey}"}


class S3CreateBucket(_S3):
    """Create a bucket (in `region`); a bucket you already own is left as it is."""

    type: ClassVar[str] = "aws.s3.CreateBucket"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.s3.CreateBucket",)
    examples: ClassVar[list[Example]] = [Example("Upload, list, download, copy and delete an object", _S3_EXAMPLE)]

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        s3 = self.client("s3")
        region = s3.meta.region_name

        def create() -> bool:
            try:  # us-east-1 answers a re-creation with success: ask first
                s3.head_bucket(Bucket=self.bucket)
                return False
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                    raise
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if region and region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                s3.create_bucket(**kwargs)
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "BucketAlreadyOwnedByYou":
                    return False
                raise

        created = await self._call(f"creation of bucket `{self.bucket}`", create)
        return {"bucket": self.bucket, "created": created}


_MANY_EXAMPLE = """\
id: s3_many
namespace: company.team
inputs:
  - id: endpoint
    type: STRING
    required: false
  - id: bucket
    type: STRING
    defaults: my-bucket
tasks:
  - id: bucket
    type: aws.s3.CreateBucket
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
  - id: one
    type: aws.s3.Upload
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
    key: incoming/a.csv
    from: "id,name\\n1,Ada\\n"
  - id: two
    type: aws.s3.Upload
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
    key: incoming/b.csv
    from: "id,name\\n2,Grace\\n"
  - id: downloads
    type: aws.s3.Downloads
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
    prefix: incoming/
    regexp: ".*\\\\.csv"
    action: MOVE
    moveTo:
      key: processed
  - id: cleanup
    type: aws.s3.DeleteList
    endpointOverride: "{{ inputs.endpoint }}"
    bucket: "{{ inputs.bucket }}"
    prefix: processed/
"""

_CONSUME_EXAMPLE = """\
id: sqs_consume
namespace: company.team
inputs:
  - id: endpoint
    type: STRING
    required: false
  - id: queueUrl
    type: STRING
    defaults: https://sqs.eu-west-1.amazonaws.com/123456789012/orders
tasks:
  - id: publish
    type: aws.sqs.Publish
    endpointOverride: "{{ inputs.endpoint }}"
    queueUrl: "{{ inputs.queueUrl }}"
    serdeType: JSON
    from:
      - {sku: A-1, quantity: 2}
      - {sku: B-7, quantity: 1}
  - id: consume
    type: aws.sqs.Consume
    endpointOverride: "{{ inputs.endpoint }}"
    queueUrl: "{{ inputs.queueUrl }}"
    serdeType: JSON
    maxRecords: 2
    maxDuration: PT10S
"""

Action = Literal["MOVE", "DELETE", "NONE"]
FILTER_DESCRIPTION = "Which keys count: FILES (not ending in `/`), DIRECTORY (ending in `/`) or BOTH."


class MoveTo(BaseModel):
    """Where `action: MOVE` puts an object: `key` is a folder; the object keeps its file name there."""

    key: str = Field(description="Destination folder (prefix) of the moved objects.")
    bucket: str | None = Field(None, description="Destination bucket (default: the same bucket).")

    def target(self, bucket: str, key: str) -> tuple[str, str]:
        return self.bucket or bucket, f"{self.key.rstrip('/')}/{posixpath.basename(key)}".lstrip("/")


class ListingOptions(BaseModel):
    """Which objects of a bucket a listing takes (shared by Downloads, DeleteList and the S3 trigger)."""

    bucket: str = Field(description="Bucket name.")
    prefix: str = Field("", description="Key prefix.")
    delimiter: str | None = Field(None, description="Group keys at this character (`/`: only the prefix's own level).")
    marker: str | None = Field(None, description="List only the keys after this one.")
    maxKeys: int = Field(1000, ge=1, description="Most objects taken.")
    regexp: str | None = Field(None, description="Regular expression the whole key must match.")
    filter: Literal["FILES", "DIRECTORY", "BOTH"] = Field("BOTH", description=FILTER_DESCRIPTION)

    def objects(self, s3: Any) -> list[dict[str, Any]]:
        """The matching objects, in key order (runs in a thread)."""
        regex = re.compile(self.regexp) if self.regexp else None
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        if self.delimiter:
            args["Delimiter"] = self.delimiter
        if self.marker:
            args["StartAfter"] = self.marker
        found: list[dict[str, Any]] = []
        for page in s3.get_paginator("list_objects_v2").paginate(**args):
            for obj in page.get("Contents", ()):
                key = obj["Key"]
                folder = key.endswith("/")
                if (self.filter == "FILES" and folder) or (self.filter == "DIRECTORY" and not folder):
                    continue
                if regex and not regex.fullmatch(key):
                    continue
                found.append({"key": key, "size": obj["Size"], "lastModified": obj["LastModified"].isoformat(),
                              "etag": obj.get("ETag", "").strip('"')})
                if len(found) >= self.maxKeys:
                    return found
        return found


class _Listing(ListingOptions, _S3):
    pass


def fetch(ctx: RunContext, s3: Any, bucket: str, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Download *objects* into internal storage (streamed); each as its listing plus `uri` (runs in a thread)."""
    out = []
    for obj in objects:
        body = s3.get_object(Bucket=bucket, Key=obj["key"])["Body"]
        try:
            uri = ctx.put_file(body, posixpath.basename(obj["key"].rstrip("/")) or "object")
        finally:
            body.close()
        out.append({**obj, "bucket": bucket, "uri": uri})
    return out


def settle(s3: Any, bucket: str, keys: list[str], action: Action, move_to: MoveTo | None) -> None:
    """MOVE (copy, then delete) or DELETE objects already downloaded; a key already gone is skipped."""
    from botocore.exceptions import ClientError

    if action == "NONE" or not keys:
        return
    if action == "MOVE":
        assert move_to is not None
        for key in keys:
            target_bucket, target_key = move_to.target(bucket, key)
            try:
                s3.copy_object(CopySource={"Bucket": bucket, "Key": key}, Bucket=target_bucket, Key=target_key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    continue  # moved by an earlier attempt
                raise
    delete_keys(s3, bucket, keys)


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> int:
    """Delete *keys* in requests of 1,000; returns how many S3 confirmed."""
    deleted = 0
    for start in range(0, len(keys), 1000):
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]],
                                                          "Quiet": False})
        if answer.get("Errors"):
            error = answer["Errors"][0]
            raise TaskError(f"S3 refused to delete {len(answer['Errors'])} objects, first {error.get('Key')}: "
                            f"{error.get('Code')} {error.get('Message')}")
        deleted += len(answer.get("Deleted", ()))
    return deleted


class S3Downloads(_Listing):
    """Download every object under `prefix` (matching `regexp`) into internal storage, then MOVE them to
    `moveTo`, DELETE them, or leave them (NONE). Outputs `objects` (each with its `uri`) and
    `outputFiles` (key → uri)."""

    type: ClassVar[str] = "aws.s3.Downloads"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.s3.Downloads",)
    examples: ClassVar[list[Example]] = [Example("Download a folder's CSV files, move them, clean up", _MANY_EXAMPLE)]

    action: Action = Field("NONE", description="Once downloaded: MOVE each object to `moveTo`, DELETE it, or NONE.")
    moveTo: MoveTo | None = Field(None, description="Destination of `action: MOVE` (`key`: a folder; `bucket`).")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        if self.action == "MOVE" and self.moveTo is None:
            raise TaskError("`action: MOVE` needs `moveTo` (`key`: the destination folder)")
        s3 = self.client("s3")

        def work() -> list[dict[str, Any]]:
            objects = fetch(ctx, s3, self.bucket, self.objects(s3))
            settle(s3, self.bucket, [o["key"] for o in objects], self.action, self.moveTo)
            return objects

        objects = await self._call(f"download of s3://{self.bucket}/{self.prefix}", work)
        ctx.metric("count", len(objects))
        return {"objects": objects, "outputFiles": {o["key"]: o["uri"] for o in objects}, "count": len(objects)}


class S3DeleteList(_Listing):
    """Delete every object under `prefix` (matching `regexp`), in requests of 1,000. Outputs `count` and
    `size` (bytes deleted)."""

    type: ClassVar[str] = "aws.s3.DeleteList"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.s3.DeleteList",)
    examples: ClassVar[list[Example]] = [Example("Download a folder's CSV files, move them, clean up", _MANY_EXAMPLE)]

    maxKeys: int = Field(100_000, ge=1, description="Most objects deleted.")
    errorOnEmpty: bool = Field(False, description="Fail when no object matches.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        s3 = self.client("s3")

        def work() -> tuple[int, int]:
            objects = self.objects(s3)
            if not objects and self.errorOnEmpty:
                raise TaskError(f"no object matches under s3://{self.bucket}/{self.prefix}")
            return delete_keys(s3, self.bucket, [o["key"] for o in objects]), sum(o["size"] for o in objects)

        count, size = await self._call(f"delete of s3://{self.bucket}/{self.prefix}*", work)
        ctx.metric("count", count)
        return {"count": count, "size": size}


def message_record(message: dict[str, Any], serde: str) -> dict[str, Any]:
    """One SQS message as Consume files and batch triggers store it (DecodeError when the body is unreadable)."""
    return {"value": deserialize(serde, message["Body"].encode()), "messageId": message["MessageId"],
            "attributes": {k: v.get("StringValue") for k, v in (message.get("MessageAttributes") or {}).items()},
            "receiveCount": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))}


class SqsConsume(AwsConnection, Task):
    """Receive messages from an SQS queue into a JSON-lines file, then delete them.

    Stops after `maxRecords` messages, after `maxDuration`, or once the queue has stayed empty for
    `pollDuration`. Each line is `{value, messageId, attributes, receiveCount}`. The messages are
    deleted only once the file is stored; a failure before leaves them to reappear after their
    visibility timeout. Outputs `uri` and `count`.
    """

    type: ClassVar[str] = "aws.sqs.Consume"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.sqs.Consume",)
    examples: ClassVar[list[Example]] = [Example("Publish, then consume JSON messages", _CONSUME_EXAMPLE)]

    queueUrl: str = Field(description="URL of the queue.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    maxRecords: int | None = Field(None, ge=1, description="Stop after this many messages.")
    maxDuration: timedelta | None = Field(None, description="Stop after this long.")
    pollDuration: timedelta = Field(timedelta(seconds=2), description="Stop once the queue has been empty this long.")
    visibilityTimeout: timedelta = Field(timedelta(seconds=60), description="How long the received messages stay "
                                                                            "hidden from other consumers before the "
                                                                            "task deletes them.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        sqs = self.client("sqs")
        records: list[dict[str, Any]] = []
        handles: list[str] = []
        started = idle_since = time.monotonic()
        try:
            while self.maxRecords is None or len(records) < self.maxRecords:
                now = time.monotonic()
                if self.maxDuration is not None and now - started >= self.maxDuration.total_seconds():
                    break
                if now - idle_since >= self.pollDuration.total_seconds():
                    break
                want = min(10, self.maxRecords - len(records)) if self.maxRecords else 10
                wait = max(0, min(20, int(self.pollDuration.total_seconds() - (now - idle_since))))
                answer = await asyncio.to_thread(
                    sqs.receive_message, QueueUrl=self.queueUrl, MaxNumberOfMessages=want, WaitTimeSeconds=wait,
                    VisibilityTimeout=int(self.visibilityTimeout.total_seconds()),
                    AttributeNames=["ApproximateReceiveCount"], MessageAttributeNames=["All"])
                messages = answer.get("Messages", ())
                if not messages:
                    if wait == 0:
                        await asyncio.sleep(0.2)
                    continue
                idle_since = time.monotonic()
                for message in messages:
                    try:
                        records.append(message_record(message, self.serdeType))
                    except DecodeError as exc:
                        raise TaskError(f"queue {self.queueUrl}: message {message['MessageId']}: {exc}") from None
                    handles.append(message["ReceiptHandle"])
            uri = ctx.put_file(json_lines(records), "messages.jsonl")
            for start in range(0, len(handles), 10):
                entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start:start + 10])]
                await asyncio.to_thread(sqs.delete_message_batch, QueueUrl=self.queueUrl, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(f"SQS receive from {self.queueUrl}", exc) from None
        ctx.metric("records", len(records))
        return {"uri": uri, "count": len(records)}
