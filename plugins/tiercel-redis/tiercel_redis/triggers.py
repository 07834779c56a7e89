"""Redis triggers: a batch of list items per execution (polling), or one execution per list
item, channel message or stream entry (realtime).

A list item is moved (LMOVE) into a processing list owned by the trigger, and removed from
it only in ``event.ack``, after the execution exists: a crash in between leaves it there,
and the next start delivers it again under the same id (kept beside it), which the kernel
deduplicates. A stream entry is acknowledged (XACK) in ``event.ack``; entries left pending
by a dead consumer are claimed (XAUTOCLAIM) once idle for ``minIdleTime``.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from tiercel.api import Example, PollingTrigger, RunContext, TriggerEvent
from tiercel.api import RealtimeTrigger as _Realtime
from tiercel_redis._common import (
    SERDE_DESCRIPTION,
    URL_DESCRIPTION,
    DecodeError,
    SerdeType,
    check_cancelled,
    connect,
    deserialize,
    json_lines,
    unreachable,
)

_TRIGGER_EXAMPLE = """\
id: redis_list_batches
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "{{ trigger.count }} jobs in {{ trigger.uri }}"
triggers:
  - id: jobs
    type: redis.Trigger
    interval: PT10S
    url: redis://localhost:6379/0
    key: jobs
    serdeType: JSON
    maxRecords: 500
"""

_LIST_EXAMPLE = """\
id: redis_each_job
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "resize {{ trigger.value.image }}"
triggers:
  - id: job
    type: redis.RealtimeTrigger
    url: redis://localhost:6379/0
    key: jobs
    serdeType: JSON
    deadLetterKey: jobs:dead
"""

_STREAM_EXAMPLE = """\
id: redis_each_order
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "order {{ trigger.value.order }} ({{ trigger.id }}) totals {{ trigger.value.total }}"
triggers:
  - id: order
    type: redis.RealtimeTrigger
    url: redis://localhost:6379/0
    source: STREAM
    key: orders
    groupName: billing
    serdeType: JSON
    minIdleTime: PT1M
"""

_CHANNEL_EXAMPLE = """\
id: redis_each_notification
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "{{ trigger.value.event }} on {{ trigger.channel }}"
triggers:
  - id: notification
    type: redis.RealtimeTrigger
    url: redis://localhost:6379/0
    source: CHANNEL
    key: notifications
    serdeType: JSON
"""

_PROCESSING = Field(None, description="List that holds the items being turned into an execution (default "
                                      "`<key>:tiercel:<namespace>/<flowId>/<triggerId>`); one per trigger.")
_DEAD_LETTER = Field(None, description="Where values the serde cannot read go, as they were: pushed to this list (a list "
                                       "or channel source) or added to this stream (a stream source, with `error` and "
                                       "`id` fields). Without it they are logged and dropped.")


def _processing(trigger: Any, ctx: RunContext) -> str:
    return trigger.processingKey or f"{trigger.key}:tiercel:{ctx.namespace}/{ctx.flow_id}/{trigger.id}"


async def _dead_letter_list(client: Any, key: str | None, raw: bytes, ctx: RunContext, what: str, exc: Exception) -> None:
    ctx.logger.error("skipping %s: %s", what, exc)
    if key:
        await client.rpush(key, raw)


class Trigger(PollingTrigger):
    """Every `interval`, move the items of a list into a batch file and start one execution.

    The execution sees `trigger.uri` (JSON lines, one value each) and `trigger.count`. The
    items wait in the trigger's processing list until the execution exists, so none is
    lost on a crash and none starts two executions.
    """

    type: ClassVar[str] = "redis.Trigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.list.Trigger", "io.kestra.plugin.redis.Trigger")
    examples: ClassVar[list[Example]] = [Example("Start one execution per batch of list items", _TRIGGER_EXAMPLE, run=False)]

    url: str = Field("redis://localhost:6379/0", description=URL_DESCRIPTION)
    key: str = Field(description="The list to take items from (its head first, as `redis.ListPush` appends to the tail).")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    maxRecords: int = Field(100, ge=1, description="Most items in one batch.")
    processingKey: str | None = _PROCESSING
    deadLetterKey: str | None = _DEAD_LETTER

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        processing = _processing(self, ctx)
        client = await connect(self.url)
        try:
            raws = await client.lrange(processing, 0, -1)
            if not raws:  # no batch left over by a crash: take a new one
                pipe = client.pipeline(transaction=False)
                for _ in range(self.maxRecords):
                    pipe.lmove(self.key, processing, "LEFT", "RIGHT")
                raws = [raw for raw in await pipe.execute() if raw is not None]
            if not raws:
                await client.aclose()
                return None
            batch_id = await _batch_id(client, processing)
            values = []
            for raw in raws:
                try:
                    values.append(deserialize(self.serdeType, raw))
                except DecodeError as exc:
                    await _dead_letter_list(client, self.deadLetterKey, raw, ctx, f"an item of `{self.key}`", exc)
        except BaseException:
            await client.aclose()
            raise

        settled = False

        async def ack() -> None:
            nonlocal settled
            if settled:  # a duplicate delivery acknowledges again: already removed
                return
            settled = True
            try:
                await client.delete(processing, f"{processing}:id")
            finally:
                await client.aclose()

        async def nack() -> None:
            nonlocal settled
            if not settled:
                settled = True
                await client.aclose()  # the batch stays in the processing list for the next poll

        if not values:
            await ack()
            return None
        uri = ctx.put_file(json_lines(values), "values.jsonl")
        return TriggerEvent(variables={"uri": uri, "count": len(values), "key": self.key},
                            key=f"{self.key}/{batch_id}", ack=ack, nack=nack)


async def _batch_id(client: Any, processing: str) -> str:
    """The id of what the processing list holds: kept beside it until it is acknowledged."""
    pipe = client.pipeline(transaction=True)
    pipe.set(f"{processing}:id", uuid.uuid4().hex, nx=True).get(f"{processing}:id")
    return (await pipe.execute())[1].decode()


class RealtimeTrigger(_Realtime):
    """Start one execution per list item, channel message or stream entry, as they arrive.

    - `source: LIST` (default): items are taken from the head of the list `key` one at a
      time through the trigger's processing list; at-least-once delivery, deduplicated, so
      exactly one execution per item. `trigger.value`, `trigger.key`, `trigger.id`.
    - `source: STREAM`: entries of the stream `key` are read in the consumer group
      `groupName` (created if missing, from `startId`) and acknowledged (XACK) once their
      execution exists; the entries a dead consumer left pending are claimed after
      `minIdleTime`. `trigger.value` (the fields), `trigger.id`, `trigger.key`.
    - `source: CHANNEL`: messages of the pub/sub channel `key`. Pub/sub is at-most-once by
      nature: messages published while the trigger is not subscribed are never seen.
      `trigger.value`, `trigger.channel`.
    """

    type: ClassVar[str] = "redis.RealtimeTrigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.list.RealtimeTrigger", "io.kestra.plugin.redis.RealtimeTrigger")
    examples: ClassVar[list[Example]] = [
        Example("One execution per list item", _LIST_EXAMPLE, run=False),
        Example("One execution per stream entry, in a consumer group", _STREAM_EXAMPLE, run=False),
        Example("One execution per channel message (at most once)", _CHANNEL_EXAMPLE, run=False),
    ]

    url: str = Field("redis://localhost:6379/0", description=URL_DESCRIPTION)
    source: Literal["LIST", "STREAM", "CHANNEL"] = Field("LIST", description="What `key` names: a LIST, a STREAM or a pub/sub CHANNEL.")
    key: str = Field(description="The list, stream or channel.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION + " For a stream, each field value.")
    groupName: str = Field("tiercel", description="Stream consumer group.")
    consumerName: str | None = Field(None, description="Name of this consumer in the stream group (default: the host name, "
                                                       "so a restarted server finds its own pending entries).")
    startId: str = Field("$", description="Where a new stream group starts: `$` (new entries only) or `0` (the whole stream).")
    minIdleTime: timedelta = Field(timedelta(minutes=1), description="Claim stream entries another consumer left unacknowledged this long (XAUTOCLAIM).")
    processingKey: str | None = _PROCESSING
    deadLetterKey: str | None = _DEAD_LETTER

    def listen(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        return {"LIST": self._list, "STREAM": self._stream, "CHANNEL": self._channel}[self.source](ctx)

    async def _list(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        processing = _processing(self, ctx)
        client = await connect(self.url)
        retry, leftover = False, True  # leftover: the processing list may hold an item (a crash, a nack)
        try:
            while True:
                if retry:  # the last execution could not be created: offer the item again, not in a tight loop
                    await asyncio.sleep(1.0)
                raw = await _redis(self.url, client.lindex(processing, 0)) if leftover or retry else None
                leftover = False
                if raw is None:
                    raw = await _redis(self.url, client.blmove(self.key, processing, 1, "LEFT", "RIGHT"))
                    check_cancelled()
                    if raw is None:
                        continue
                item_id = await _batch_id(client, processing)
                settled, retry = asyncio.Event(), False

                async def ack(raw: bytes = raw, settled: asyncio.Event = settled) -> None:
                    pipe = client.pipeline(transaction=True)
                    pipe.lrem(processing, 1, raw).delete(f"{processing}:id")
                    await pipe.execute()
                    settled.set()

                async def nack(settled: asyncio.Event = settled) -> None:
                    nonlocal retry
                    retry = True  # the item stays in the processing list and is offered again
                    settled.set()

                try:
                    value = deserialize(self.serdeType, raw)
                except DecodeError as exc:
                    await _dead_letter_list(client, self.deadLetterKey, raw, ctx, f"an item of `{self.key}`", exc)
                    await ack()
                    continue
                yield TriggerEvent(variables={"value": value, "key": self.key, "id": item_id},
                                   key=f"{self.key}/{item_id}", ack=ack, nack=nack)
                await settled.wait()  # one item in flight: the processing list holds exactly it
        finally:
            await client.aclose()

    async def _stream(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        from redis.exceptions import ResponseError

        client = await connect(self.url)
        consumer = self.consumerName or socket.gethostname()
        try:
            try:
                await client.xgroup_create(self.key, self.groupName, id=self.startId, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            own_pending, next_claim = True, 0.0
            while True:
                entries: list[tuple[bytes, dict]] = []
                if own_pending:  # after a restart: what this consumer had read but not acknowledged
                    answer = await _redis(self.url, client.xreadgroup(self.groupName, consumer, {self.key: "0"}, count=100))
                    entries = answer[0][1] if answer else []
                    own_pending = len(entries) == 100
                elif time.monotonic() >= next_claim:
                    claimed = await _redis(self.url, client.xautoclaim(
                        self.key, self.groupName, consumer, int(self.minIdleTime.total_seconds() * 1000), count=100))
                    entries = claimed[1]
                    if entries:
                        ctx.logger.warning("claimed %d entries of `%s` left pending by another consumer", len(entries), self.key)
                    next_claim = time.monotonic() + max(1.0, self.minIdleTime.total_seconds() / 2)
                if not entries and not own_pending:
                    answer = await _redis(self.url, client.xreadgroup(self.groupName, consumer, {self.key: ">"},
                                                                      count=100, block=1000))
                    check_cancelled()
                    entries = answer[0][1] if answer else []
                for entry_id, fields in entries:
                    entry = entry_id.decode()
                    if not fields:  # trimmed from the stream while pending: nothing to deliver
                        await client.xack(self.key, self.groupName, entry_id)
                        continue
                    try:
                        value = {k.decode(): deserialize(self.serdeType, v) for k, v in fields.items()}
                    except DecodeError as exc:
                        ctx.logger.error("skipping entry %s of `%s`: %s", entry, self.key, exc)
                        if self.deadLetterKey:
                            await client.xadd(self.deadLetterKey, {**fields, "error": str(exc), "id": entry})
                        await client.xack(self.key, self.groupName, entry_id)
                        continue
                    yield TriggerEvent(variables={"value": value, "id": entry, "key": self.key},
                                       key=f"{self.key}/{entry}", ack=_xack(client, self.key, self.groupName, entry_id))
        finally:
            await client.aclose()

    async def _channel(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        client = await connect(self.url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.key)
            while True:
                message = await _redis(self.url, pubsub.get_message(timeout=1.0))
                check_cancelled()
                if message is None or message["type"] != "message":
                    continue
                try:
                    value = deserialize(self.serdeType, message["data"])
                except DecodeError as exc:
                    await _dead_letter_list(client, self.deadLetterKey, message["data"], ctx,
                                            f"a message on `{self.key}`", exc)
                    continue
                yield TriggerEvent(variables={"value": value, "channel": message["channel"].decode()})
        finally:
            await pubsub.aclose()
            await client.aclose()


def _xack(client: Any, stream: str, group: str, entry_id: bytes) -> Any:
    async def ack() -> None:
        await client.xack(stream, group, entry_id)
    return ack


async def _redis(url: str, call: Any) -> Any:
    """Await a Redis call; a lost connection becomes an error naming the server (the runtime restarts us)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        return await call
    except (RedisConnectionError, OSError) as exc:
        raise unreachable(url, exc) from exc
