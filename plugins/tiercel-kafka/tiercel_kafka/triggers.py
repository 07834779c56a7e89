"""Kafka triggers: a batch per execution (polling) or one execution per record (realtime).

Both commit offsets only in ``event.ack``, which the kernel awaits after the execution is
durably created, and both give each event a dedupe key built from topic, partition and
offset: a crash between the two replays the records and the key stops a second execution.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import Field

from tiercel.api import Example, PollingTrigger, RunContext, TriggerEvent
from tiercel.api import RealtimeTrigger as _Realtime
from tiercel_kafka._common import (
    Consumer, DecodeError, SerdeType, check_cancelled, client_options, ensure_reachable, commit, dead_letter, read_batch, record_dict,
    start_consumer, unreachable, write_records,
)

_TRIGGER_EXAMPLE = """\
id: kafka_batches
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "{{ trigger.messagesCount }} new records in {{ trigger.uri }}"
triggers:
  - id: batch
    type: kafka.Trigger
    interval: PT30S
    properties:
      bootstrap.servers: localhost:9092
    topic: orders
    groupId: tiercel-orders
    valueDeserializer: JSON
    maxRecords: 1000
"""

_REALTIME_EXAMPLE = """\
id: kafka_each_record
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "order {{ trigger.key }}: {{ trigger.value.quantity }} x {{ trigger.value.sku }} (offset {{ trigger.offset }})"
triggers:
  - id: each
    type: kafka.RealtimeTrigger
    properties:
      bootstrap.servers: localhost:9092
    topic: orders
    groupId: tiercel-orders
    valueDeserializer: JSON
    deadLetterTopic: orders-dlq
"""

_DEAD_LETTER = Field(None, description="Topic that receives records the deserializer cannot read (as they were, with "
                                       "`tiercel.error`, `tiercel.topic`, `tiercel.partition`, `tiercel.offset` headers); "
                                       "without it they are logged and skipped.")


def _key(ranges: dict[str, list[int]]) -> str:
    return ",".join(f"{tp}@{start}-{end}" for tp, (start, end) in sorted(ranges.items()))


class Trigger(Consumer, PollingTrigger):
    """Every `interval`, read the new records of the group into one file and start one execution.

    The execution sees `trigger.uri` (JSON lines `{key, value, headers, topic, partition,
    offset, timestamp}`) and `trigger.messagesCount`. Offsets are committed only once the
    execution exists (Kestra commits before, so a crash there loses the batch). The batch's
    offset ranges are kept in the trigger state until then, so after a crash the same
    ranges are read again under the same dedupe key: one execution, nothing lost.
    """

    type: ClassVar[str] = "kafka.Trigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.kafka.Trigger",)
    examples: ClassVar[list[Example]] = [Example("Start one execution per batch of new records", _TRIGGER_EXAMPLE, run=False)]

    groupId: str = Field(description="Consumer group whose offsets record what was already turned into executions.")
    deadLetterTopic: str | None = _DEAD_LETTER

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        pending = ctx.state.get("pending")
        consumer = await start_consumer(self)
        try:
            records, start, positions = await read_batch(self, consumer, ctx, ranges=pending)
        except BaseException:
            await consumer.stop()
            raise
        if not positions:
            ctx.state.pop("pending", None)
            await consumer.stop()
            return None
        ranges = {f"{tp.topic}/{tp.partition}": [start[tp], pos] for tp, pos in positions.items()}
        ctx.state["pending"] = ranges
        good = []
        try:
            for record in records:
                if "error" in record:
                    ctx.logger.error("skipping record %s/%s@%s: %s", record["topic"], record["partition"], record["offset"],
                                     record["error"])
                    if self.deadLetterTopic:
                        await dead_letter(self.properties, self.deadLetterTopic, record["raw"], record["error"])
                else:
                    good.append(record)
            if not good:  # only undecodable records: nothing to start, move past them
                await commit(consumer, positions)
                ctx.state.pop("pending", None)
                await consumer.stop()
                return None
            uri = ctx.put_file(write_records(good), "messages.jsonl")
        except BaseException:
            await consumer.stop()
            raise

        settled = False

        async def ack() -> None:
            nonlocal settled
            if settled:  # a duplicate delivery acknowledges again: already committed
                return
            settled = True
            try:
                await commit(consumer, positions)
                ctx.state.pop("pending", None)
            finally:
                await consumer.stop()

        async def nack() -> None:
            nonlocal settled
            if not settled:
                settled = True
                await consumer.stop()  # nothing committed: the next poll reads the same ranges

        return TriggerEvent(variables={"uri": uri, "messagesCount": len(good), "ranges": ranges},
                            key=_key(ranges), ack=ack, nack=nack)


class _Offsets:
    """Which offsets of each partition were handed out and which have their execution.

    A commit stores the position after the longest run of settled offsets from the
    start, so a record whose execution is not yet created is never skipped, even when
    events are delivered concurrently.
    """

    def __init__(self) -> None:
        self.out: dict[Any, collections.deque[int]] = {}
        self.done: dict[Any, set[int]] = {}
        self.lock = asyncio.Lock()
        self.flusher: asyncio.Task | None = None

    def handed(self, tp: Any, offset: int) -> None:
        self.out.setdefault(tp, collections.deque()).append(offset)
        self.done.setdefault(tp, set())

    def settle(self, tp: Any, offset: int) -> None:
        if tp in self.done:
            self.done[tp].add(offset)

    def ready(self) -> dict[Any, int]:
        positions = {}
        for tp, queue in self.out.items():
            done = self.done[tp]
            position = None
            while queue and queue[0] in done:
                position = queue.popleft() + 1
                done.discard(position - 1)
            if position is not None:
                positions[tp] = position
        return positions

    def forget(self, partitions: Any) -> None:
        for tp in partitions:
            self.out.pop(tp, None)
            self.done.pop(tp, None)

    async def commit(self, consumer: Any) -> bool:
        """Commit what is settled; True when there was something to commit."""
        async with self.lock:
            positions = self.ready()
            if positions:
                await consumer.commit(positions)
            return bool(positions)

    def schedule(self, consumer: Any, ctx: RunContext) -> None:
        """Commit in the background (the listener goes on); commits coalesce while one is in flight."""
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.get_running_loop().create_task(self._drain(consumer, ctx))

    async def _drain(self, consumer: Any, ctx: RunContext) -> None:
        try:
            while await self.commit(consumer):
                pass
        except Exception as exc:  # the executions exist: a replay of these records is deduplicated
            ctx.logger.warning("offset commit failed (the records will be replayed, not doubled): %s", exc)

    async def flush(self, consumer: Any) -> None:
        if self.flusher is not None:
            await asyncio.gather(self.flusher, return_exceptions=True)
        await self.commit(consumer)


class RealtimeTrigger(_Realtime):
    """Start one execution per record, as records arrive (milliseconds), within a consumer group.

    The execution sees `trigger.key`, `trigger.value`, `trigger.headers`, `trigger.topic`,
    `trigger.partition`, `trigger.offset` and `trigger.timestamp`. A record's offset is
    committed once its execution exists, and never past a record of the same partition
    whose execution does not exist yet: after a crash, the uncommitted records come back
    and their dedupe key (`topic/partition/offset`) stops a second execution. Several
    servers with the same `groupId` share the partitions.
    """

    type: ClassVar[str] = "kafka.RealtimeTrigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.kafka.RealtimeTrigger",)
    examples: ClassVar[list[Example]] = [Example("Start one execution per JSON record", _REALTIME_EXAMPLE, run=False)]

    properties: dict[str, Any] = Field(default_factory=dict, description="Kafka client settings with Java names (`bootstrap.servers` defaults to localhost:9092). "
                                                   "`session.timeout.ms` and `heartbeat.interval.ms` tune how fast a "
                                                   "dead member's partitions move to another server; `fetch.max.wait.ms` "
                                                   "(20 here) bounds the latency on brokers that hold fetches.")
    topic: str | list[str] | None = Field(None, description="Topic, or list of topics, to subscribe to.")
    topicPattern: str | None = Field(None, description="Regular expression of the topics to subscribe to, instead of `topic`.")
    groupId: str = Field(description="Consumer group: its committed offsets say where to resume; servers sharing it share the partitions.")
    keyDeserializer: SerdeType = Field("STRING", description="How record keys are read: STRING, JSON, BYTES (as base64), INTEGER, SHORT, LONG, FLOAT, DOUBLE, UUID or VOID.")
    valueDeserializer: SerdeType = Field("STRING", description="How record values are read (same choices as `keyDeserializer`).")
    serdeProperties: dict[str, Any] = Field(default_factory=dict, description="Serde settings (such as `schema.registry.url`); kept for Kestra compatibility, unused by the built-in serdes.")
    deadLetterTopic: str | None = _DEAD_LETTER

    async def listen(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        import aiokafka

        offsets = _Offsets()
        if not self.topic and not self.topicPattern:
            raise ValueError("set `topic` (a name or a list) or `topicPattern`")
        # fetch_max_wait_ms: some brokers (tansu) hold a fetch that long even when records arrive
        consumer = aiokafka.AIOKafkaConsumer(**client_options(
            self.properties, aiokafka.AIOKafkaConsumer, auto_offset_reset="earliest", group_id=self.groupId,
            enable_auto_commit=False, fetch_max_wait_ms=20))

        class Rebalance(aiokafka.ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                try:  # hand over what is settled; the rest is replayed (and deduplicated) by the new owner
                    await offsets.commit(consumer)
                except Exception as exc:
                    ctx.logger.warning("commit on rebalance failed (records will be replayed, not doubled): %s", exc)
                offsets.forget(revoked)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                pass

        try:
            await consumer.start()
        except Exception as exc:
            await consumer.stop()
            raise unreachable(self.properties, exc) from exc
        producer = None
        try:
            topics = [self.topic] if isinstance(self.topic, str) else self.topic
            if self.topicPattern:
                consumer.subscribe(pattern=self.topicPattern, listener=Rebalance())
            else:
                consumer.subscribe(topics=list(topics), listener=Rebalance())
            while True:
                check_cancelled()
                batch = await consumer.getmany(timeout_ms=1000, max_records=500)
                if not batch:  # idle: make sure the broker is still there (aiokafka would retry silently)
                    await ensure_reachable(self.properties)
                for tp, records in batch.items():
                    for record in records:
                        offsets.handed(tp, record.offset)
                        try:
                            variables = record_dict(record, self.keyDeserializer, self.valueDeserializer)
                        except DecodeError as exc:
                            ctx.logger.error("skipping record %s/%s@%s: %s", record.topic, record.partition,
                                             record.offset, exc)
                            if self.deadLetterTopic:
                                if producer is None:
                                    producer = aiokafka.AIOKafkaProducer(**client_options(self.properties, aiokafka.AIOKafkaProducer, strict=False))
                                    await producer.start()
                                await dead_letter(self.properties, self.deadLetterTopic, record, str(exc), producer)
                            offsets.settle(tp, record.offset)
                            await offsets.commit(consumer)
                            continue
                        yield TriggerEvent(variables=variables, key=f"{record.topic}/{record.partition}/{record.offset}",
                                           ack=_ack(ctx, offsets, consumer, tp, record.offset))
        finally:
            try:
                await offsets.flush(consumer)
            except Exception as exc:
                ctx.logger.warning("final commit failed (records will be replayed, not doubled): %s", exc)
            if producer is not None:
                await producer.stop()
            await consumer.stop()


def _ack(ctx: RunContext, offsets: _Offsets, consumer: Any, tp: Any, offset: int) -> Any:
    def ack() -> None:
        offsets.settle(tp, offset)
        offsets.schedule(consumer, ctx)
    return ack
