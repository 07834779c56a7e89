"""Kafka tasks: Produce records, Consume a batch into internal storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

from tiercel.api import Example, RunContext, Task, TaskError
from tiercel_kafka._common import (
    Consumer, SerdeType, client_options, commit, read_batch, read_records, serialize, start_consumer, unreachable,
    write_records,
)

_PRODUCE_EXAMPLE = """\
id: kafka_produce
namespace: company.team
inputs:
  - id: bootstrap
    type: STRING
    defaults: localhost:9092
tasks:
  - id: produce
    type: kafka.Produce
    properties:
      bootstrap.servers: "{{ inputs.bootstrap }}"
    topic: orders
    valueSerializer: JSON
    from:
      - key: order-1
        value: {sku: A-12, quantity: 2}
        headers: {source: tiercel}
      - key: order-2
        value: {sku: B-07, quantity: 1}
"""

_CONSUME_EXAMPLE = """\
id: kafka_consume
namespace: company.team
inputs:
  - id: bootstrap
    type: STRING
    defaults: localhost:9092
tasks:
  - id: consume
    type: kafka.Consume
    properties:
      bootstrap.servers: "{{ inputs.bootstrap }}"
    topic: orders
    groupId: tiercel-orders
    valueDeserializer: JSON
    maxRecords: 500
    maxDuration: PT10S
  - id: count
    type: core.Log
    message: "{{ outputs.consume.messagesCount }} records in {{ outputs.consume.uri }}"
"""


class Produce(Task):
    """Send records to a Kafka topic.

    One record from `key`/`value`/`headers`, or many from `from`: a record map, a list of
    them, or a `tiercel://` file of JSON lines (what `kafka.Consume` writes, so a batch can
    be copied between topics). A record map may set `key`, `value`, `headers`, `timestamp`
    (milliseconds), and `topic` and `partition` when the task sets no `topic`. The task
    waits until the broker has every record.
    """

    type: ClassVar[str] = "kafka.Produce"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.kafka.Produce",)
    examples: ClassVar[list[Example]] = [Example("Send two JSON records", _PRODUCE_EXAMPLE, run=False)]

    properties: dict[str, Any] = Field(default_factory=dict, description="Kafka client settings with Java names (`bootstrap.servers` defaults to localhost:9092), "
                                                   "e.g. `{bootstrap.servers: localhost:9092, acks: all}`.")
    topic: str | None = Field(None, description="Topic records go to, unless a record names its own `topic`.")
    key: Any = Field(None, description="Key of the single record to send (when `from` is not set).")
    value: Any = Field(None, description="Value of the single record to send (when `from` is not set).")
    headers: dict[str, str] | None = Field(None, description="Headers of the single record to send.")
    partition: int | None = Field(None, ge=0, description="Partition to write to (by default the key's hash decides).")
    from_: Any = Field(None, alias="from", description="Records to send: a map `{key, value, headers, topic, partition, timestamp}`, "
                                                      "a list of such maps, or a `tiercel://` file of them as JSON lines.")
    keySerializer: SerdeType = Field("STRING", description="How keys are written: STRING, JSON, BYTES (from base64 text), INTEGER, SHORT, LONG, FLOAT, DOUBLE, UUID or VOID.")
    valueSerializer: SerdeType = Field("STRING", description="How values are written (same choices as `keySerializer`).")
    serdeProperties: dict[str, Any] = Field(default_factory=dict, description="Serde settings (such as `schema.registry.url`); kept for Kestra compatibility, unused by the built-in serdes.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import aiokafka

        if self.from_ is None and self.value is None and self.key is None:
            raise TaskError("property `from` (or `value`) is required: the records to send")
        records = (self.from_ if self.from_ is not None else
                   {"key": self.key, "value": self.value, "headers": self.headers, "partition": self.partition})
        producer = aiokafka.AIOKafkaProducer(**client_options(self.properties, aiokafka.AIOKafkaProducer))
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            raise unreachable(self.properties, exc) from exc
        count = 0
        try:
            pending = []
            for number, record in enumerate(read_records(ctx, records), 1):
                if not isinstance(record, dict):
                    raise TaskError(f"property `from`: record {number} is not a map: {record!r}")
                topic = self.topic or record.get("topic")
                if not topic:
                    raise TaskError(f"property `topic` is required (record {number} names no topic)")
                headers = [(k, None if v is None else str(v).encode()) for k, v in (record.get("headers") or {}).items()]
                partition = self.partition if self.topic else record.get("partition")
                pending.append(await producer.send(
                    topic, serialize(self.valueSerializer, record.get("value")), key=serialize(self.keySerializer, record.get("key")),
                    partition=partition, headers=headers or None, timestamp_ms=_millis(record.get("timestamp"))))
                count += 1
            for future in pending:
                await future
        finally:
            await producer.stop()
        ctx.metric("records", count)
        return {"messagesCount": count}


def _millis(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and not value.isdigit():
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    return int(value)


class Consume(Consumer, Task):
    """Read records from Kafka into a file in internal storage.

    Reads from the group's committed offsets (or from `since`, or the beginning) up to the
    records the topics hold when the task starts, stopping earlier at `maxRecords` or
    `maxDuration`. The records are written as JSON lines `{key, value, headers, topic,
    partition, offset, timestamp}` (`uri` output), and with a `groupId` the offsets are
    committed once the file is stored. A record that the deserializer cannot read fails the task.
    """

    type: ClassVar[str] = "kafka.Consume"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.kafka.Consume",)
    examples: ClassVar[list[Example]] = [Example("Read up to 500 JSON records and count them", _CONSUME_EXAMPLE, run=False)]

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        consumer = await start_consumer(self)
        try:
            records, _start, positions = await read_batch(self, consumer, ctx)
            for record in records:
                if "error" in record:
                    raise TaskError(f"record {record['topic']}/{record['partition']}@{record['offset']}: {record['error']}")
            uri = ctx.put_file(write_records(records), "messages.jsonl")
            await commit(consumer, positions)
        finally:
            await consumer.stop()
        ctx.metric("records", len(records))
        return {"uri": uri, "messagesCount": len(records)}
