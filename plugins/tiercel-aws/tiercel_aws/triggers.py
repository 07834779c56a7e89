"""Triggers: SQS (one execution per message, or a batch per poll) and new S3 objects, each settled only once
its execution exists."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from tiercel.api import Example, PollingTrigger, RealtimeTrigger, RunContext, TaskError, TriggerEvent
from tiercel.messaging import SERDE_DESCRIPTION, DecodeError, SerdeType, deserialize, json_lines, once, unreachable
from tiercel_aws._common import AwsConnection
from tiercel_aws.tasks import Action, ListingOptions, MoveTo, fetch, message_record, settle

_EXAMPLE = """\
id: sqs_each_order
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "order {{ trigger.value.sku }} ({{ trigger.messageId }})"
triggers:
  - id: order
    type: aws.sqs.RealtimeTrigger
    queueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/orders
    serdeType: JSON
    deadLetterQueueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/orders-dead
"""


class SqsRealtimeTrigger(AwsConnection, RealtimeTrigger):
    """Start one execution per SQS message (long polling), deleting the message once its execution exists.

    The execution sees `trigger.value`, `trigger.messageId`, `trigger.attributes` and
    `trigger.receiveCount`. While a message waits for its execution, its visibility timeout is
    extended, so no other consumer receives it meanwhile; a message whose execution could not
    be stored is made visible again at once. If the server dies first, SQS delivers it again
    after `visibilityTimeout`, and its `messageId` (the dedupe key) stops a second execution.
    """

    type: ClassVar[str] = "aws.sqs.RealtimeTrigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.sqs.RealtimeTrigger",)
    examples: ClassVar[list[Example]] = [Example("One execution per JSON message", _EXAMPLE, run=False)]

    queueUrl: str = Field(description="URL of the queue.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    maxNumberOfMessages: int = Field(10, ge=1, le=10, description="Messages received per request (SQS allows 10).")
    waitTime: timedelta = Field(timedelta(seconds=2), description="Long-polling wait of each receive (at most 20 s).")
    visibilityTimeout: timedelta = Field(timedelta(seconds=30), description="How long a received message stays hidden "
                                                                            "from other consumers; extended while its "
                                                                            "execution is being created.")
    deadLetterQueueUrl: str | None = Field(None, description="Queue that receives bodies the serde cannot read, with a "
                                                             "`tiercel.error` attribute. Without it they are logged and "
                                                             "deleted. (A redrive policy on the queue is SQS's own way.)")

    async def listen(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        from botocore.exceptions import BotoCoreError, ClientError

        sqs = self.client("sqs")
        held: dict[str, str] = {}  # receipt handles of messages received, not yet deleted or released
        keeper = asyncio.create_task(self._keep_hidden(sqs, held, ctx))
        visibility = int(self.visibilityTimeout.total_seconds())

        def call(fn: Any, **kwargs: Any) -> Any:
            return asyncio.to_thread(fn, QueueUrl=self.queueUrl, **kwargs)

        busy = False  # the last receive found messages: ask again without waiting (some servers wait the full time)
        try:
            while True:
                receiving = asyncio.ensure_future(call(
                    sqs.receive_message, MaxNumberOfMessages=self.maxNumberOfMessages,
                    WaitTimeSeconds=0 if busy else min(20, int(self.waitTime.total_seconds())),
                    VisibilityTimeout=visibility, AttributeNames=["ApproximateReceiveCount"], MessageAttributeNames=["All"]))
                try:
                    answer = await asyncio.shield(receiving)
                except asyncio.CancelledError:
                    # the receive goes on in its thread: what it gets would stay hidden for the whole timeout
                    with contextlib.suppress(Exception):
                        for message in (await receiving).get("Messages", ()):
                            held[message["MessageId"]] = message["ReceiptHandle"]
                    raise
                except (ClientError, BotoCoreError) as exc:
                    raise unreachable("SQS queue", self.queueUrl, exc, "check the queue URL, region and credentials") from exc
                busy = bool(answer.get("Messages"))
                for message in answer.get("Messages", ()):
                    handle, message_id = message["ReceiptHandle"], message["MessageId"]
                    try:
                        value = deserialize(self.serdeType, message["Body"].encode())
                    except DecodeError as exc:
                        ctx.logger.error("skipping message %s: %s", message_id, exc)
                        if self.deadLetterQueueUrl:
                            await asyncio.to_thread(sqs.send_message, QueueUrl=self.deadLetterQueueUrl, MessageBody=message["Body"],
                                                    MessageAttributes={"tiercel.error": {"DataType": "String", "StringValue": str(exc)}})
                        await call(sqs.delete_message, ReceiptHandle=handle)
                        continue
                    held[message_id] = handle

                    async def delete(message_id: str = message_id, handle: str = handle) -> None:
                        held.pop(message_id, None)
                        await call(sqs.delete_message, ReceiptHandle=handle)

                    async def release(message_id: str = message_id, handle: str = handle) -> None:
                        held.pop(message_id, None)
                        await call(sqs.change_message_visibility, ReceiptHandle=handle, VisibilityTimeout=0)

                    ack, nack = once(delete, release)
                    attributes = {k: v.get("StringValue") for k, v in (message.get("MessageAttributes") or {}).items()}
                    yield TriggerEvent(variables={"value": value, "messageId": message_id, "attributes": attributes,
                                                  "receiveCount": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))},
                                       key=message_id, ack=ack, nack=nack)
        finally:
            keeper.cancel()
            with contextlib.suppress(BaseException):
                await keeper
            for handle in list(held.values()):  # stopped: hand back what we hold, now rather than after the timeout
                with contextlib.suppress(Exception):
                    await call(sqs.change_message_visibility, ReceiptHandle=handle, VisibilityTimeout=0)

    async def _keep_hidden(self, sqs: Any, held: dict[str, str], ctx: RunContext) -> None:
        """Every half visibility timeout, extend the messages still waiting for their execution."""
        period = max(1.0, self.visibilityTimeout.total_seconds() / 2)
        while True:
            await asyncio.sleep(period)
            for handle in list(held.values()):
                try:
                    await asyncio.to_thread(sqs.change_message_visibility, QueueUrl=self.queueUrl, ReceiptHandle=handle,
                                            VisibilityTimeout=int(self.visibilityTimeout.total_seconds()))
                except Exception as exc:  # deleted meanwhile, or SQS unreachable: the receive loop reports that
                    ctx.logger.warning("could not extend a message's visibility: %s", exc)


_BATCH_EXAMPLE = """\
id: sqs_batches
namespace: company.team
tasks:
  - id: count
    type: core.Log
    message: "{{ trigger.count }} orders in {{ trigger.uri }}"
triggers:
  - id: orders
    type: aws.sqs.Trigger
    queueUrl: https://sqs.eu-west-1.amazonaws.com/123456789012/orders
    serdeType: JSON
    maxRecords: 100
    interval: PT30S
"""

_S3_EXAMPLE = """\
id: s3_new_files
namespace: company.team
tasks:
  - id: each
    type: core.ForEach
    values: "{{ trigger.objects | map(attribute='uri') | list }}"
    tasks:
      - id: log
        type: core.Log
        message: "new object stored as {{ taskrun.value }}"
triggers:
  - id: watch
    type: aws.s3.Trigger
    bucket: my-bucket
    prefix: incoming/
    regexp: ".*\\\\.csv"
    action: MOVE
    moveTo:
      key: archive
    interval: PT1M
"""

_DONE_FOR = 24 * 3600.0  # how long a delivered message id is remembered (a delete that failed: SQS redelivers it)
_DONE_MAX = 20_000


def _remember(done: dict[str, float], ids: list[str]) -> dict[str, float]:
    now = time.time()
    kept = {k: t for k, t in done.items() if now - t < _DONE_FOR}
    kept.update(dict.fromkeys(ids, now))
    return dict(sorted(kept.items(), key=lambda kv: kv[1])[-_DONE_MAX:])


class SqsTrigger(AwsConnection, PollingTrigger):
    """Every `interval`, receive up to `maxRecords` messages into one JSON-lines file and start one execution.

    The execution sees `trigger.uri` (lines `{value, messageId, attributes, receiveCount}`, as
    `aws.sqs.Consume` writes them), `trigger.count` and `trigger.messageIds`. The messages are
    deleted once the execution exists; until then their visibility is extended. The batch (its
    file and message ids) is kept in the trigger state before the execution is created, so after
    a crash the same batch is offered again under the same dedupe key: no second execution, no
    message lost. Message ids already delivered are remembered for a day, and a redelivered one is
    deleted without starting anything.
    """

    type: ClassVar[str] = "aws.sqs.Trigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.sqs.Trigger",)
    examples: ClassVar[list[Example]] = [Example("One execution per batch of messages", _BATCH_EXAMPLE, run=False)]

    queueUrl: str = Field(description="URL of the queue.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    maxRecords: int = Field(100, ge=1, description="Most messages in one batch.")
    waitTime: timedelta = Field(timedelta(seconds=1), description="Long-polling wait of the first receive of a poll.")
    visibilityTimeout: timedelta = Field(timedelta(seconds=30), description="How long received messages stay hidden "
                                                                            "from other consumers; extended until "
                                                                            "the execution exists.")
    deadLetterQueueUrl: str | None = Field(None, description="Queue that receives bodies the serde cannot read, with a "
                                                             "`tiercel.error` attribute. Without it they are logged and "
                                                             "deleted.")

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        from botocore.exceptions import BotoCoreError, ClientError

        sqs = self.client("sqs")
        pending = ctx.state.get("pending")
        if pending:  # a batch whose execution may exist (a crash before its ack): offer it again, same key
            ctx.logger.info("offering again the batch of %d messages whose delivery was interrupted", pending["count"])
            return self._event(ctx, sqs, pending, [])
        done: dict[str, float] = ctx.state.get("done", {})
        visibility = int(self.visibilityTimeout.total_seconds())
        records: list[dict[str, Any]] = []
        handles: list[str] = []
        try:
            wait = min(20, int(self.waitTime.total_seconds()))
            while len(records) < self.maxRecords:
                answer = await asyncio.to_thread(
                    sqs.receive_message, QueueUrl=self.queueUrl, MaxNumberOfMessages=min(10, self.maxRecords - len(records)),
                    WaitTimeSeconds=wait, VisibilityTimeout=visibility, AttributeNames=["ApproximateReceiveCount"],
                    MessageAttributeNames=["All"])
                messages = answer.get("Messages", ())
                if not messages:
                    break
                wait = 0
                for message in messages:
                    if message["MessageId"] in done:  # delivered before; its delete was lost
                        await asyncio.to_thread(sqs.delete_message, QueueUrl=self.queueUrl,
                                                ReceiptHandle=message["ReceiptHandle"])
                        continue
                    try:
                        records.append(message_record(message, self.serdeType))
                    except DecodeError as exc:
                        ctx.logger.error("skipping message %s: %s", message["MessageId"], exc)
                        if self.deadLetterQueueUrl:
                            await asyncio.to_thread(
                                sqs.send_message, QueueUrl=self.deadLetterQueueUrl, MessageBody=message["Body"],
                                MessageAttributes={"tiercel.error": {"DataType": "String", "StringValue": str(exc)}})
                        await asyncio.to_thread(sqs.delete_message, QueueUrl=self.queueUrl,
                                                ReceiptHandle=message["ReceiptHandle"])
                        continue
                    handles.append(message["ReceiptHandle"])
        except (ClientError, BotoCoreError) as exc:
            await self._release(sqs, handles)
            raise unreachable("SQS queue", self.queueUrl, exc, "check the queue URL, region and credentials") from exc
        if not records:
            return None
        try:
            uri = ctx.put_file(json_lines(records), "messages.jsonl")
        except BaseException:
            await self._release(sqs, handles)
            raise
        ids = [r["messageId"] for r in records]
        pending = {"key": hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:32], "uri": uri,
                   "count": len(ids), "messageIds": ids}
        ctx.state["pending"] = pending  # saved by the engine before the execution is created
        return self._event(ctx, sqs, pending, handles)

    def _event(self, ctx: RunContext, sqs: Any, pending: dict[str, Any], handles: list[str]) -> TriggerEvent:
        keeper = asyncio.ensure_future(self._keep_hidden(ctx, sqs, handles)) if handles else None

        def stop_keeper() -> None:
            if keeper is not None:
                keeper.cancel()

        async def delete() -> None:
            stop_keeper()
            ctx.state["done"] = _remember(ctx.state.get("done", {}), pending["messageIds"])
            ctx.state.pop("pending", None)
            for start in range(0, len(handles), 10):
                entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start:start + 10])]
                try:
                    await asyncio.to_thread(sqs.delete_message_batch, QueueUrl=self.queueUrl, Entries=entries)
                except Exception as exc:  # they come back; their ids are remembered as delivered
                    ctx.logger.warning("could not delete delivered messages (deleted when they come back): %s", exc)

        async def release() -> None:  # the execution could not be stored: the batch stays pending in the state
            stop_keeper()
            await self._release(sqs, handles)

        ack, nack = once(delete, release)
        return TriggerEvent(variables={"uri": pending["uri"], "count": pending["count"],
                                       "messageIds": pending["messageIds"], "queueUrl": self.queueUrl},
                            key=pending["key"], ack=ack, nack=nack)

    async def _release(self, sqs: Any, handles: list[str]) -> None:
        for handle in handles:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(sqs.change_message_visibility, QueueUrl=self.queueUrl, ReceiptHandle=handle,
                                        VisibilityTimeout=0)

    async def _keep_hidden(self, ctx: RunContext, sqs: Any, handles: list[str]) -> None:
        period = max(1.0, self.visibilityTimeout.total_seconds() / 2)
        while True:
            await asyncio.sleep(period)
            for handle in handles:
                try:
                    await asyncio.to_thread(sqs.change_message_visibility, QueueUrl=self.queueUrl, ReceiptHandle=handle,
                                            VisibilityTimeout=int(self.visibilityTimeout.total_seconds()))
                except Exception as exc:
                    ctx.logger.warning("could not extend a message's visibility: %s", exc)


class S3Trigger(AwsConnection, ListingOptions, PollingTrigger):
    """Start an execution when new objects appear under `prefix`: `trigger.objects` lists them (`key`, `size`,
    `lastModified`, `etag`, and `uri`: the object downloaded into internal storage).

    Once the execution exists, the objects are MOVEd to `moveTo`, DELETEd, or left (NONE). Each
    object starts one execution only: with NONE the trigger remembers each key and ETag (an
    object written again is new). The batch is kept in the trigger state before the execution is
    created, so a crash in between offers the same batch again under the same dedupe key.
    """

    type: ClassVar[str] = "aws.s3.Trigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.aws.s3.Trigger",)
    examples: ClassVar[list[Example]] = [Example("Each new CSV object once, then archived", _S3_EXAMPLE, run=False)]

    maxKeys: int = Field(100, ge=1, description="Most objects in one execution; the rest wait for the next poll.")
    action: Action = Field("NONE", description="Once the execution exists: MOVE the objects to `moveTo`, DELETE them, "
                                               "or NONE (each object still starts one execution only).")
    moveTo: MoveTo | None = Field(None, description="Destination of `action: MOVE` (`key`: a folder; `bucket`).")
    interval: timedelta = Field(timedelta(seconds=60), description="Time between two polls.")

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        from botocore.exceptions import BotoCoreError, ClientError

        if self.action == "MOVE" and self.moveTo is None:
            raise TaskError("`action: MOVE` needs `moveTo` (`key`: the destination folder)")
        s3 = self.client("s3")
        pending = ctx.state.get("pending")
        if not pending:
            seen: dict[str, str] = ctx.state.get("seen", {})

            def look() -> list[dict[str, Any]]:
                listing = self.model_copy(update={"maxKeys": 10_000_000}).objects(s3)
                if seen:  # forget the keys that left the listing: the state stays as small as the folder
                    present = {o["key"] for o in listing}
                    ctx.state["seen"] = {k: v for k, v in seen.items() if k in present}
                new = [o for o in listing if seen.get(o["key"]) != o["etag"]][:self.maxKeys]
                return fetch(ctx, s3, self.bucket, new) if new else []

            try:
                objects = await asyncio.to_thread(look)
            except (ClientError, BotoCoreError) as exc:
                raise unreachable("S3 bucket", self.bucket, exc, "check the bucket, region and credentials") from exc
            if not objects:
                return None
            tag = "\n".join(f"{o['key']}@{o['etag']}" for o in objects)
            pending = {"key": f"{self.bucket}/{hashlib.sha256(tag.encode()).hexdigest()[:32]}", "objects": objects}
            ctx.state["pending"] = pending  # saved by the engine before the execution is created
        else:
            ctx.logger.info("offering again the %d objects whose delivery was interrupted", len(pending["objects"]))
        objects = pending["objects"]

        async def ack() -> None:
            keys = [o["key"] for o in objects]
            await asyncio.to_thread(settle, s3, self.bucket, keys, self.action, self.moveTo)
            seen = ctx.state.get("seen", {})
            if self.action == "NONE":
                seen = {**seen, **{o["key"]: o["etag"] for o in objects}}
            ctx.state["seen"] = seen
            ctx.state.pop("pending", None)

        return TriggerEvent(variables={"objects": objects, "count": len(objects), "bucket": self.bucket},
                            key=pending["key"], ack=ack)
