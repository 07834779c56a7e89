"""AMQP triggers: one execution per message (realtime) or per batch (polling), acked after the execution exists.

RabbitMQ hands an unacknowledged message back to the queue when its channel closes (a crash,
a lost connection), flagged `redelivered`; the message's `message_id` is the dedupe key,
so the redelivery makes no second execution. A message without `message_id` has no key:
it is delivered at least once (set one when publishing; `amqp.Publish` always does).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import Field

from tiercel.api import Example, PollingTrigger, RunContext, TriggerEvent
from tiercel.api import RealtimeTrigger as _Realtime
from tiercel.messaging import SERDE_DESCRIPTION, DecodeError, SerdeType, json_lines, once, unreachable
from tiercel_amqp._common import URL, connect, message_variables

_REALTIME_EXAMPLE = """\
id: amqp_each_order
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "order {{ trigger.value.sku }} x {{ trigger.value.quantity }} ({{ trigger.messageId }})"
triggers:
  - id: order
    type: amqp.RealtimeTrigger
    url: amqp://guest:guest@localhost:5672/
    queue: orders
    serdeType: JSON
    deadLetterQueue: orders-dead
"""

_TRIGGER_EXAMPLE = """\
id: amqp_order_batches
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "{{ trigger.count }} orders in {{ trigger.uri }}"
triggers:
  - id: batch
    type: amqp.Trigger
    interval: PT30S
    url: amqp://guest:guest@localhost:5672/
    queue: orders
    serdeType: JSON
    maxRecords: 500
"""

_DEAD_LETTER = Field(None, description="Queue that receives messages the serde cannot read, as they were, with a "
                                       "`tiercel.error` header (published on the default exchange). Without it they "
                                       "are rejected without requeue, which sends them to the queue's own "
                                       "`x-dead-letter-exchange` if it has one.")


async def _dead_letter(channel: Any, queue_name: str | None, message: Any, error: Exception, ctx: RunContext) -> None:
    """Park an unreadable message, then settle it: it must never stop the trigger nor come back."""
    import aio_pika

    ctx.logger.error("skipping message %s: %s", message.message_id or message.delivery_tag, error)
    if queue_name:
        headers = {**(message.headers or {}), "tiercel.error": str(error), "tiercel.queue": message.routing_key or ""}
        await channel.default_exchange.publish(
            aio_pika.Message(message.body, headers=headers, message_id=message.message_id,
                             content_type=message.content_type, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue_name)
        await message.ack()
    else:
        await message.reject(requeue=False)


class RealtimeTrigger(_Realtime):
    """Start one execution per message of a queue, as messages arrive.

    The execution sees `trigger.value`, `trigger.messageId`, `trigger.routingKey`,
    `trigger.exchange`, `trigger.headers`, `trigger.contentType`, `trigger.correlationId`,
    `trigger.timestamp` and `trigger.redelivered`. A message is acknowledged once its
    execution exists; one whose execution could not be stored is requeued. Up to
    `prefetchCount` messages are in flight at once.
    """

    type: ClassVar[str] = "amqp.RealtimeTrigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.amqp.RealtimeTrigger",)
    examples: ClassVar[list[Example]] = [Example("One execution per JSON message", _REALTIME_EXAMPLE, run=False)]

    url: str = URL
    queue: str = Field(description="Queue to consume (it must exist: declare it with `amqp.DeclareQueue`).")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    prefetchCount: int = Field(100, ge=1, description="Most unacknowledged messages at once.")
    consumerTag: str | None = Field(None, description="Consumer tag shown by the broker (default: generated).")
    deadLetterQueue: str | None = _DEAD_LETTER

    async def listen(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        import aiormq

        connection = await connect(self.url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.prefetchCount)
            queue = await channel.get_queue(self.queue, ensure=True)
            async with queue.iterator(consumer_tag=self.consumerTag) as messages:
                async for message in messages:
                    try:
                        variables = message_variables(message, self.serdeType)
                    except DecodeError as exc:
                        await _dead_letter(channel, self.deadLetterQueue, message, exc, ctx)
                        continue
                    ack, nack = once(message.ack, lambda m=message: m.nack(requeue=True))
                    yield TriggerEvent(variables=variables, ack=ack, nack=nack,
                                       key=f"{self.queue}/{message.message_id}" if message.message_id else None)
            # the iterator ends when the broker closes the channel: say so, and the kernel reconnects with backoff
            raise ConnectionError("the broker closed the connection")
        except (aiormq.exceptions.AMQPConnectionError, ConnectionError) as exc:
            raise unreachable("RabbitMQ", self.url, exc) from exc
        finally:
            await connection.close()


class Trigger(PollingTrigger):
    """Every `interval`, take up to `maxRecords` messages of a queue into one file and start one execution.

    The execution sees `trigger.uri` (JSON lines as `amqp.Consume` writes them) and
    `trigger.count`. The messages are acknowledged once the execution exists; until then they
    stay unacknowledged on the trigger's channel, and a crash returns them to the queue. The
    batch's message ids are kept in the trigger state, so the replayed batch has the same
    dedupe key and starts no second execution.
    """

    type: ClassVar[str] = "amqp.Trigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.amqp.Trigger",)
    examples: ClassVar[list[Example]] = [Example("One execution per batch of messages", _TRIGGER_EXAMPLE, run=False)]

    url: str = URL
    queue: str = Field(description="Queue to consume.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    maxRecords: int = Field(100, ge=1, description="Most messages in one batch.")
    deadLetterQueue: str | None = _DEAD_LETTER

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        pending = ctx.state.get("pending")  # the ids of a batch whose execution may exist but was never acked
        limit = len(pending) if pending else self.maxRecords
        connection = await connect(self.url)
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(self.queue, ensure=True)
            records, ids, last = [], [], None
            while len(ids) < limit:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                try:
                    records.append(message_variables(message, self.serdeType))
                    ids.append(message.message_id or f"#{hashlib.sha256(message.body).hexdigest()[:16]}")
                    last = message
                except DecodeError as exc:
                    await _dead_letter(channel, self.deadLetterQueue, message, exc, ctx)
            if last is None:
                ctx.state.pop("pending", None)
                await connection.close()
                return None
            ctx.state["pending"] = ids
            uri = ctx.put_file(json_lines(records), "messages.jsonl")
        except BaseException:
            await connection.close()
            raise

        async def ack() -> None:
            try:
                await last.ack(multiple=True)
                ctx.state.pop("pending", None)
            finally:
                await connection.close()

        first_ack, nack = once(ack, connection.close)  # closing the channel requeues the batch
        key = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
        return TriggerEvent(variables={"uri": uri, "count": len(records), "queue": self.queue},
                            key=f"{self.queue}/{key}", ack=first_ack, nack=nack)
