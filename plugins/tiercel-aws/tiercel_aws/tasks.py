"""S3 and SQS tasks (boto3 calls run in a thread: the event loop never blocks)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from pydantic import Field

from tiercel.api import Example, RunContext, Task, TaskError
from tiercel.messaging import FROM_DESCRIPTION, SERDE_DESCRIPTION, SerdeType, items, serialize
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
