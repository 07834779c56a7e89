"""AMQP tasks: publish, consume into a file, and declare queues, exchanges and bindings."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from tiercel.api import Example, RunContext, Task, TaskError
from tiercel.messaging import FROM_DESCRIPTION, SERDE_DESCRIPTION, DecodeError, SerdeType, items, json_lines, serialize
from tiercel_amqp._common import URL, connect, message_variables

_PUBLISH_EXAMPLE = """\
id: amqp_publish_consume
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: amqp://guest:guest@localhost:5672/
tasks:
  - id: queue
    type: amqp.DeclareQueue
    url: "{{ inputs.url }}"
    name: "orders-{{ execution.id }}"
    autoDelete: true
  - id: publish
    type: amqp.Publish
    url: "{{ inputs.url }}"
    routingKey: "orders-{{ execution.id }}"
    serdeType: JSON
    from:
      - {sku: A-1, quantity: 2}
      - {sku: B-7, quantity: 1}
  - id: consume
    type: amqp.Consume
    url: "{{ inputs.url }}"
    queue: "orders-{{ execution.id }}"
    serdeType: JSON
    maxRecords: 2
  - id: log
    type: core.Log
    message: "{{ outputs.consume.count }} orders in {{ outputs.consume.uri }}"
"""

_DECLARE_EXAMPLE = """\
id: amqp_topology
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: amqp://guest:guest@localhost:5672/
tasks:
  - id: exchange
    type: amqp.DeclareExchange
    url: "{{ inputs.url }}"
    name: "events-{{ execution.id }}"
    exchangeType: TOPIC
    autoDelete: true
  - id: queue
    type: amqp.DeclareQueue
    url: "{{ inputs.url }}"
    name: "audit-{{ execution.id }}"
    autoDelete: true
  - id: bind
    type: amqp.QueueBind
    url: "{{ inputs.url }}"
    exchange: "events-{{ execution.id }}"
    queue: "audit-{{ execution.id }}"
    bindingKey: "order.*"
"""

_DURABLE = Field(True, description="Survive a broker restart.")
_AUTO_DELETE = Field(False, description="Deleted by the broker once its last consumer (queue) or binding (exchange) goes.")
_ARGS = Field(default_factory=dict, description="Extra arguments (`x-message-ttl`, `x-dead-letter-exchange`, `x-queue-type`…).")


class Publish(Task):
    """Publish messages to an exchange (the default exchange routes by queue name).

    Each message gets a `messageId` (a new UUID unless `messageId` is set) so triggers that
    consume it deduplicate redeliveries. Messages are persistent by default. With publisher
    confirms, the task ends only once the broker has taken every message.
    """

    type: ClassVar[str] = "amqp.Publish"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.amqp.Publish",)
    examples: ClassVar[list[Example]] = [Example("Declare a queue, publish JSON messages, consume them", _PUBLISH_EXAMPLE)]

    url: str = URL
    exchange: str = Field("", description="Exchange to publish to; empty for the default exchange (routing key = queue name).")
    routingKey: str = Field("", description="Routing key of every message.")
    from_: Any = Field(alias="from", description=FROM_DESCRIPTION)
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    headers: dict[str, Any] = Field(default_factory=dict, description="Headers of every message.")
    contentType: str | None = Field(None, description="`content_type` property (default `application/json` for JSON).")
    messageId: str | None = Field(None, description="`message_id` of a single message (default: a new UUID per message).")
    deliveryMode: Literal["PERSISTENT", "TRANSIENT"] = Field("PERSISTENT", description="Whether the broker writes messages to disk.")
    expiration: timedelta | None = Field(None, description="Per-message time to live (ISO-8601 duration).")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import aio_pika

        connection = await connect(self.url)
        count = 0
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(self.exchange) if self.exchange else channel.default_exchange
            content_type = self.contentType or ("application/json" if self.serdeType == "JSON" else None)
            mode = aio_pika.DeliveryMode.PERSISTENT if self.deliveryMode == "PERSISTENT" else aio_pika.DeliveryMode.NOT_PERSISTENT
            for value in items(ctx, self.from_):
                message = aio_pika.Message(serialize(self.serdeType, value), headers=self.headers or None,
                                           content_type=content_type, delivery_mode=mode,
                                           message_id=self.messageId or uuid.uuid4().hex, expiration=self.expiration)
                await exchange.publish(message, routing_key=self.routingKey)
                count += 1
        finally:
            await connection.close()
        ctx.metric("records", count)
        return {"messagesCount": count}


class Consume(Task):
    """Take messages from a queue into a JSON-lines file, then acknowledge them.

    Stops after `maxRecords` messages, or when the queue has stayed empty for
    `pollDuration`, or after `maxDuration`. Each line is `{value, messageId, routingKey,
    exchange, headers, contentType, correlationId, timestamp, redelivered}`. The messages are
    acknowledged only once the file is stored: a failure before leaves them in the queue.
    """

    type: ClassVar[str] = "amqp.Consume"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.amqp.Consume",)
    examples: ClassVar[list[Example]] = [Example("Publish, then consume", _PUBLISH_EXAMPLE)]

    url: str = URL
    queue: str = Field(description="Queue to consume.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    maxRecords: int | None = Field(None, ge=1, description="Stop after this many messages.")
    maxDuration: timedelta | None = Field(None, description="Stop after this long.")
    pollDuration: timedelta = Field(timedelta(seconds=1), description="Stop once the queue has been empty this long.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        connection = await connect(self.url)
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(self.queue, ensure=True)
            records, last = [], None
            started = idle_since = time.monotonic()
            while self.maxRecords is None or len(records) < self.maxRecords:
                now = time.monotonic()
                if self.maxDuration is not None and now - started >= self.maxDuration.total_seconds():
                    break
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    if now - idle_since >= self.pollDuration.total_seconds():
                        break
                    await asyncio.sleep(0.05)
                    continue
                idle_since, last = time.monotonic(), message
                try:
                    records.append(message_variables(message, self.serdeType))
                except DecodeError as exc:
                    raise TaskError(f"queue `{self.queue}`: message {message.message_id or message.delivery_tag}: {exc}") from None
            uri = ctx.put_file(json_lines(records), "messages.jsonl")
            if last is not None:
                await last.ack(multiple=True)
        finally:
            await connection.close()
        ctx.metric("records", len(records))
        return {"uri": uri, "count": len(records)}


class DeclareQueue(Task):
    """Declare a queue (idempotent: an existing queue with the same settings is left as it is)."""

    type: ClassVar[str] = "amqp.DeclareQueue"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.amqp.CreateQueue", "amqp.CreateQueue")
    examples: ClassVar[list[Example]] = [Example("Declare an exchange, a queue and a binding", _DECLARE_EXAMPLE)]

    url: str = URL
    name: str = Field(description="Queue name.")
    durability: bool = _DURABLE
    exclusive: bool = Field(False, description="Only this connection may use it (deleted when it closes).")
    autoDelete: bool = _AUTO_DELETE
    args: dict[str, Any] = _ARGS

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        connection = await connect(self.url)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.name, durable=self.durability, exclusive=self.exclusive,
                                                auto_delete=self.autoDelete, arguments=self.args or None)
            count = queue.declaration_result.message_count
        finally:
            await connection.close()
        return {"queue": self.name, "messageCount": count}


class DeclareExchange(Task):
    """Declare an exchange (idempotent)."""

    type: ClassVar[str] = "amqp.DeclareExchange"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.amqp.DeclareExchange",)
    examples: ClassVar[list[Example]] = [Example("Declare an exchange, a queue and a binding", _DECLARE_EXAMPLE)]

    url: str = URL
    name: str = Field(description="Exchange name.")
    exchangeType: Literal["DIRECT", "FANOUT", "TOPIC", "HEADERS"] = Field("DIRECT", description="Routing rule.")
    durability: bool = _DURABLE
    autoDelete: bool = _AUTO_DELETE
    internal: bool = Field(False, description="Only other exchanges may publish to it.")
    args: dict[str, Any] = _ARGS

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        connection = await connect(self.url)
        try:
            channel = await connection.channel()
            await channel.declare_exchange(self.name, self.exchangeType.lower(), durable=self.durability,
                                           auto_delete=self.autoDelete, internal=self.internal, arguments=self.args or None)
        finally:
            await connection.close()
        return {"exchange": self.name}


class QueueBind(Task):
    """Bind a queue to an exchange with a binding key."""

    type: ClassVar[str] = "amqp.QueueBind"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.amqp.QueueBind",)
    examples: ClassVar[list[Example]] = [Example("Declare an exchange, a queue and a binding", _DECLARE_EXAMPLE)]

    url: str = URL
    exchange: str = Field(description="Exchange to bind to.")
    queue: str = Field(description="Queue to bind.")
    bindingKey: str = Field("", description="Binding key (a pattern such as `order.*` for a TOPIC exchange).")
    args: dict[str, Any] = _ARGS

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        connection = await connect(self.url)
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(self.queue, ensure=True)
            await queue.bind(self.exchange, routing_key=self.bindingKey, arguments=self.args or None)
        finally:
            await connection.close()
        return {"exchange": self.exchange, "queue": self.queue, "bindingKey": self.bindingKey}
