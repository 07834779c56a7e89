"""Pulsar tasks: Produce messages, Consume a batch into internal storage."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from tiercel.api import Example, RunContext, Task, TaskError
from tiercel_pulsar._common import (
    TOKEN_DESCRIPTION, URI_DESCRIPTION, DecodeError, SerdeType, Subscriber, client, failed, json_lines, message_dict, read_records,
    receive_batch, serialize, subscribe,
)

_PRODUCE_EXAMPLE = """\
id: pulsar_produce
namespace: company.team
inputs:
  - id: uri
    type: STRING
    defaults: pulsar://localhost:6650
tasks:
  - id: produce
    type: pulsar.Produce
    uri: "{{ inputs.uri }}"
    topic: persistent://public/default/orders
    serializer: JSON
    from:
      - key: order-1
        value: {sku: A-12, quantity: 2}
        properties: {source: tiercel}
      - key: order-2
        value: {sku: B-07, quantity: 1}
"""

_CONSUME_EXAMPLE = """\
id: pulsar_consume
namespace: company.team
inputs:
  - id: uri
    type: STRING
    defaults: pulsar://localhost:6650
tasks:
  - id: consume
    type: pulsar.Consume
    uri: "{{ inputs.uri }}"
    topic: persistent://public/default/orders
    subscriptionName: tiercel-orders
    deserializer: JSON
    pollDuration: PT2S
    maxRecords: 500
  - id: count
    type: core.Log
    message: "{{ outputs.consume.messagesCount }} messages in {{ outputs.consume.uri }}"
"""


class Produce(Task):
    """Send messages to a Pulsar topic.

    `from` is a message map `{key, value, properties, eventTime}`, a list of them, or a
    `tiercel://` file of them as JSON lines (what `pulsar.Consume` writes). The task waits
    until the broker has stored every message. Output `messagesCount`.
    """

    type: ClassVar[str] = "pulsar.Produce"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.pulsar.Produce",)
    examples: ClassVar[list[Example]] = [Example("Send two JSON messages", _PRODUCE_EXAMPLE, run=False)]

    uri: str = Field("pulsar://localhost:6650", description=URI_DESCRIPTION)
    authenticationToken: str | None = Field(None, description=TOKEN_DESCRIPTION)
    topic: str = Field(description="Topic to send to.")
    from_: Any = Field(alias="from", description="Messages: a map `{key, value, properties, eventTime}`, a list of them, or a `tiercel://` file (JSON lines).")
    serializer: SerdeType = Field("STRING", description="How values are written: STRING, JSON or BYTES (from base64 text).")
    producerName: str | None = Field(None, description="Name of the producer (unique on the topic when set).")
    compressionType: Literal["NONE", "LZ4", "ZLIB", "ZSTD", "SNAPPY"] = Field("NONE", description="Compression of message batches.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import pulsar

        pulsar_client = await client(self.uri, self.authenticationToken)
        try:
            try:
                producer = await asyncio.to_thread(
                    pulsar_client.create_producer, self.topic, producer_name=self.producerName,
                    compression_type=getattr(pulsar.CompressionType, self.compressionType))
            except Exception as exc:
                raise failed(self.uri, f"creating a producer on `{self.topic}`", exc) from exc
            count = 0
            for number, message in enumerate(read_records(ctx, self.from_), 1):
                if not isinstance(message, dict):
                    raise TaskError(f"property `from`: message {number} is not a map: {message!r}")
                properties = {str(k): str(v) for k, v in (message.get("properties") or {}).items()}
                event_time = message.get("eventTime")
                await asyncio.to_thread(
                    producer.send, serialize(self.serializer, message.get("value")), properties=properties or None,
                    partition_key=None if message.get("key") is None else str(message["key"]),
                    event_timestamp=int(event_time) if event_time else None)
                count += 1
            producer.close()
        finally:
            pulsar_client.close()
        return {"messagesCount": count}


class Consume(Subscriber, Task):
    """Read messages of a subscription into a file in internal storage, then acknowledge them.

    Reads until no message comes for `pollDuration`, or `maxRecords`, or `maxDuration`.
    The file holds JSON lines `{key, value, properties, topic, messageId, eventTime,
    publishTime, redeliveryCount}` (`uri` output); messages are acknowledged once it is
    stored. A message that the deserializer cannot read fails the task (unacknowledged,
    it is delivered again).
    """

    type: ClassVar[str] = "pulsar.Consume"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.pulsar.Consume",)
    examples: ClassVar[list[Example]] = [Example("Read up to 500 JSON messages", _CONSUME_EXAMPLE, run=False)]

    pollDuration: timedelta = Field(timedelta(seconds=2), description="Stop once no message came for this long (ISO-8601).")
    maxRecords: int | None = Field(None, ge=1, description="Stop after this many messages.")
    maxDuration: timedelta | None = Field(None, description="Stop reading after this long (ISO-8601).")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        pulsar_client = await client(self.uri, self.authenticationToken)
        try:
            consumer = await asyncio.to_thread(subscribe, pulsar_client, self)
            messages = await receive_batch(consumer, self.pollDuration, self.maxRecords, self.maxDuration)
            try:
                records = [message_dict(m, self.deserializer) for m in messages]
            except DecodeError as exc:
                raise TaskError(f"topic {self.topic}: {exc}") from None
            uri = ctx.put_file(json_lines(records), "messages.jsonl")
            for message in messages:
                consumer.acknowledge(message)
            consumer.close()
        finally:
            pulsar_client.close()
        return {"uri": uri, "messagesCount": len(records)}
