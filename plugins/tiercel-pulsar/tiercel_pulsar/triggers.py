"""Pulsar triggers: a batch per execution (polling) or one execution per message (realtime).

Messages are acknowledged only in ``event.ack``, which the kernel awaits after the
execution is durably created, and negatively acknowledged in ``event.nack`` when it could
not be created. The dedupe key holds the message ids, which a redelivery keeps: a message
redelivered after a crash never starts a second execution.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from tiercel.api import Example, PollingTrigger, RunContext, TriggerEvent
from tiercel.api import RealtimeTrigger as _Realtime
from tiercel_pulsar._common import (
    DecodeError, Subscriber, check_cancelled, client, dead_letter, json_lines, message_dict, message_id, receive_batch, subscribe,
)

_TRIGGER_EXAMPLE = """\
id: pulsar_batches
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "{{ trigger.messagesCount }} messages in {{ trigger.uri }}"
triggers:
  - id: batch
    type: pulsar.Trigger
    interval: PT30S
    uri: pulsar://localhost:6650
    topic: persistent://public/default/orders
    subscriptionName: tiercel-orders
    deserializer: JSON
    maxRecords: 1000
"""

_REALTIME_EXAMPLE = """\
id: pulsar_each_message
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "order {{ trigger.key }}: {{ trigger.value.quantity }} x {{ trigger.value.sku }}"
triggers:
  - id: each
    type: pulsar.RealtimeTrigger
    uri: pulsar://localhost:6650
    topic: persistent://public/default/orders
    subscriptionName: tiercel-orders
    subscriptionType: Shared
    deserializer: JSON
    deadLetterTopic: persistent://public/default/orders-dlq
"""

_DEAD_LETTER = Field(None, description="Topic that receives messages the deserializer cannot read (as they were, with "
                                       "`tiercel.error`, `tiercel.topic`, `tiercel.messageId` properties) before they are "
                                       "acknowledged; without it they are logged and acknowledged.")


async def _skip(pulsar_client: Any, consumer: Any, message: Any, exc: Exception, dead_topic: str | None, ctx: RunContext) -> None:
    ctx.logger.error("skipping message %s of %s: %s", message_id(message), message.topic_name(), exc)
    if dead_topic:
        await dead_letter(pulsar_client, dead_topic, message, str(exc))
    consumer.acknowledge(message)


class Trigger(Subscriber, PollingTrigger):
    """Every `interval`, read the subscription's new messages into one file and start one execution.

    The execution sees `trigger.uri` (JSON lines `{key, value, properties, topic,
    messageId, eventTime, publishTime, redeliveryCount}`) and `trigger.messagesCount`. The
    messages are acknowledged once the execution exists; if it cannot be created they are
    negatively acknowledged and come back. A batch redelivered whole after a crash is
    recognised by its message ids.
    """

    type: ClassVar[str] = "pulsar.Trigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.pulsar.Trigger",)
    examples: ClassVar[list[Example]] = [Example("Start one execution per batch of messages", _TRIGGER_EXAMPLE, run=False)]

    pollDuration: timedelta = Field(timedelta(seconds=2), description="End the batch once no message came for this long (ISO-8601).")
    maxRecords: int | None = Field(None, ge=1, description="Most messages in one batch.")
    maxDuration: timedelta | None = Field(None, description="Longest time spent reading one batch (ISO-8601).")
    deadLetterTopic: str | None = _DEAD_LETTER

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        pulsar_client = await client(self.uri, self.authenticationToken)
        try:
            consumer = await asyncio.to_thread(subscribe, pulsar_client, self, negative_ack_redelivery_delay_ms=1000)
            messages = await receive_batch(consumer, self.pollDuration, self.maxRecords, self.maxDuration)
            records, kept = [], []
            for message in messages:
                try:
                    records.append(message_dict(message, self.deserializer))
                    kept.append(message)
                except DecodeError as exc:
                    await _skip(pulsar_client, consumer, message, exc, self.deadLetterTopic, ctx)
            if not records:
                pulsar_client.close()
                return None
            uri = ctx.put_file(json_lines(records), "messages.jsonl")
        except BaseException:
            pulsar_client.close()
            raise
        ids = sorted(r["messageId"] for r in records)

        settled = False

        async def settle(method: str) -> None:
            nonlocal settled
            if settled:  # a duplicate delivery acknowledges again: nothing left to do
                return
            settled = True
            try:
                for message in kept:
                    getattr(consumer, method)(message)
            finally:
                await asyncio.to_thread(pulsar_client.close)

        async def ack() -> None:
            await settle("acknowledge")

        async def nack() -> None:
            await settle("negative_acknowledge")

        digest = hashlib.sha256(",".join(ids).encode()).hexdigest()[:32]
        return TriggerEvent(variables={"uri": uri, "messagesCount": len(records)}, key=f"batch/{digest}", ack=ack, nack=nack)


class RealtimeTrigger(Subscriber, _Realtime):
    """Start one execution per message, as messages arrive, on a subscription.

    The execution sees `trigger.key`, `trigger.value`, `trigger.properties`,
    `trigger.topic`, `trigger.messageId`, `trigger.eventTime`, `trigger.publishTime` and
    `trigger.redeliveryCount`. A message is acknowledged once its execution exists, and
    negatively acknowledged (redelivered after `negativeAckRedeliveryDelay`) when it could
    not be created. With a Shared or Key_Shared subscription several servers share the
    messages; Exclusive and Failover keep them in order on one.
    """

    type: ClassVar[str] = "pulsar.RealtimeTrigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.pulsar.RealtimeTrigger",)
    examples: ClassVar[list[Example]] = [Example("Start one execution per JSON message", _REALTIME_EXAMPLE, run=False)]

    negativeAckRedeliveryDelay: timedelta = Field(timedelta(seconds=1), description="How long a negatively acknowledged message waits before it is delivered again.")
    deadLetterTopic: str | None = _DEAD_LETTER

    async def listen(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        import pulsar

        pulsar_client = await client(self.uri, self.authenticationToken)
        try:
            delay = int(self.negativeAckRedeliveryDelay.total_seconds() * 1000)
            consumer = await asyncio.to_thread(subscribe, pulsar_client, self, negative_ack_redelivery_delay_ms=delay)
            while True:
                check_cancelled()
                try:
                    message = await asyncio.to_thread(consumer.receive, 500)
                except pulsar.Timeout:
                    continue
                try:
                    variables = message_dict(message, self.deserializer)
                except DecodeError as exc:
                    await _skip(pulsar_client, consumer, message, exc, self.deadLetterTopic, ctx)
                    continue
                yield TriggerEvent(variables=variables, key=f"{variables['topic']}/{variables['messageId']}",
                                   ack=_call(ctx, consumer.acknowledge, message),
                                   nack=_call(ctx, consumer.negative_acknowledge, message))
        finally:
            await asyncio.to_thread(pulsar_client.close)


def _call(ctx: RunContext, method: Any, message: Any) -> Any:
    def settle() -> None:
        try:
            method(message)
        except Exception as exc:  # the consumer is gone: the broker redelivers, the dedupe key holds
            ctx.logger.warning("could not settle message %s (it will be redelivered, not doubled): %s",
                               message_id(message), exc)
    return settle
