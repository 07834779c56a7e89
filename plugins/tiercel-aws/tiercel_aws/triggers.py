"""The SQS trigger: one execution per message, the message deleted only once its execution exists."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from tiercel.api import Example, RealtimeTrigger, RunContext, TriggerEvent
from tiercel.messaging import SERDE_DESCRIPTION, DecodeError, SerdeType, deserialize, once, unreachable
from tiercel_aws._common import AwsConnection

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
