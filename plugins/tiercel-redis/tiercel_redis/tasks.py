"""Redis tasks: strings (Set, Get, Delete), lists (ListPush, ListPop), pub/sub (Publish), streams (StreamAdd)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tiercel.api import Example, RunContext, Task, TaskError
from tiercel_redis._common import (
    SERDE_DESCRIPTION,
    URL_DESCRIPTION,
    DecodeError,
    SerdeType,
    check_cancelled,
    connect,
    deserialize,
    items,
    json_lines,
    serialize,
)

_STRINGS_EXAMPLE = """\
id: redis_strings
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: redis://localhost:6379/0
tasks:
  - id: set
    type: redis.Set
    url: "{{ inputs.url }}"
    key: "user:{{ execution.id }}"
    value: {name: Ada, plan: pro}
    serdeType: JSON
    options:
      expirationDuration: PT1H
  - id: get
    type: redis.Get
    url: "{{ inputs.url }}"
    key: "user:{{ execution.id }}"
    serdeType: JSON
  - id: show
    type: core.Log
    message: "{{ outputs.get.data.name }} is on {{ outputs.get.data.plan }}"
  - id: delete
    type: redis.Delete
    url: "{{ inputs.url }}"
    keys: ["user:{{ execution.id }}"]
"""

_LIST_EXAMPLE = """\
id: redis_list
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: redis://localhost:6379/0
tasks:
  - id: push
    type: redis.ListPush
    url: "{{ inputs.url }}"
    key: jobs
    serdeType: JSON
    from:
      - {job: resize, image: a.png}
      - {job: resize, image: b.png}
  - id: pop
    type: redis.ListPop
    url: "{{ inputs.url }}"
    key: jobs
    serdeType: JSON
    maxRecords: 100
  - id: count
    type: core.Log
    message: "popped {{ outputs.pop.count }} jobs into {{ outputs.pop.uri }}"
"""

_PUBLISH_EXAMPLE = """\
id: redis_publish
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: redis://localhost:6379/0
tasks:
  - id: publish
    type: redis.Publish
    url: "{{ inputs.url }}"
    channel: notifications
    serdeType: JSON
    from:
      - {event: deployed, service: api}
"""

_STREAM_EXAMPLE = """\
id: redis_stream_add
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: redis://localhost:6379/0
tasks:
  - id: add
    type: redis.StreamAdd
    url: "{{ inputs.url }}"
    key: orders
    serdeType: JSON
    maxLength: 100000
    from:
      - {order: "1001", total: 25.5}
      - {order: "1002", total: 12}
"""


class _Redis(Task):
    url: str = Field("redis://localhost:6379/0", description=URL_DESCRIPTION)

    async def _client(self) -> Any:
        return await connect(self.url)


class SetOptions(BaseModel):
    """How ``redis.Set`` writes: expiry and conditions, as Kestra's ``options``."""

    model_config = ConfigDict(extra="forbid")

    expirationDuration: timedelta | None = Field(None, description="Expire the key after this long (ISO-8601, e.g. PT1H).")
    expirationDate: datetime | None = Field(None, description="Expire the key at this date.")
    keepTtl: bool = Field(False, description="Keep the time to live the key already had.")
    mustNotExist: bool = Field(False, description="Write only if the key does not exist (SET NX).")
    mustExist: bool = Field(False, description="Write only if the key already exists (SET XX).")


class Set(_Redis):
    """Set a key to a value (SET), with optional expiry and existence conditions.

    Outputs `written` (false when a condition stopped the write) and, with `get: true`, the
    previous value as `oldValue`.
    """

    type: ClassVar[str] = "redis.Set"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.string.Set", "io.kestra.plugin.redis.Set")
    examples: ClassVar[list[Example]] = [Example("Write, read and delete a JSON value", _STRINGS_EXAMPLE, run=False)]

    key: str = Field(description="Key to write.")
    value: Any = Field(description="Value to write; with serdeType JSON any structure, written as JSON text.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    get: bool = Field(False, description="Also return the previous value (SET GET) as `oldValue`.")
    options: SetOptions = Field(default_factory=SetOptions, description="Expiry and conditions: expirationDuration, expirationDate, keepTtl, mustNotExist, mustExist.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        o = self.options
        if o.mustExist and o.mustNotExist:
            raise TaskError("property `options`: mustExist and mustNotExist cannot both be true")
        client = await self._client()
        try:
            result = await client.set(
                self.key, serialize(self.serdeType, self.value), ex=o.expirationDuration, exat=o.expirationDate,
                keepttl=o.keepTtl, nx=o.mustNotExist, xx=o.mustExist, get=self.get)
        finally:
            await client.aclose()
        if self.get:
            return {"oldValue": _read(self.serdeType, result, self.key), "written": True}
        return {"written": bool(result)}


class Get(_Redis):
    """Read the value of a key (GET): output `data` (null when the key does not exist) and `key`."""

    type: ClassVar[str] = "redis.Get"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.string.Get", "io.kestra.plugin.redis.Get")
    examples: ClassVar[list[Example]] = [Example("Write, read and delete a JSON value", _STRINGS_EXAMPLE, run=False)]

    key: str = Field(description="Key to read.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    failedOnMissing: bool = Field(False, description="Fail the task when the key does not exist.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        client = await self._client()
        try:
            raw = await client.get(self.key)
        finally:
            await client.aclose()
        if raw is None and self.failedOnMissing:
            raise TaskError(f"key `{self.key}` does not exist")
        return {"key": self.key, "data": _read(self.serdeType, raw, self.key)}


class Delete(_Redis):
    """Delete keys (DEL): output `count`, how many existed."""

    type: ClassVar[str] = "redis.Delete"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.string.Delete", "io.kestra.plugin.redis.Delete")
    examples: ClassVar[list[Example]] = [Example("Write, read and delete a JSON value", _STRINGS_EXAMPLE, run=False)]

    keys: list[str] = Field(min_length=1, description="Keys to delete.")
    failedOnMissing: bool = Field(False, description="Fail the task when one of the keys did not exist.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        client = await self._client()
        try:
            count = await client.delete(*self.keys)
        finally:
            await client.aclose()
        if self.failedOnMissing and count < len(self.keys):
            raise TaskError(f"{len(self.keys) - count} of {len(self.keys)} keys did not exist")
        return {"count": count}


class ListPush(_Redis):
    """Append values to the tail of a list (RPUSH), so `redis.ListPop` and the list triggers read them in order.

    Output `count`: the values pushed.
    """

    type: ClassVar[str] = "redis.ListPush"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.list.ListPush", "io.kestra.plugin.redis.ListPush")
    examples: ClassVar[list[Example]] = [Example("Push jobs, then pop them into a file", _LIST_EXAMPLE, run=False)]

    key: str = Field(description="The list.")
    from_: Any = Field(alias="from", description="Values to push: a list, one value, or a `tiercel://` file (JSON lines).")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        values = [serialize(self.serdeType, v) for v in items(ctx, self.from_)]
        if not values:
            return {"count": 0}
        client = await self._client()
        try:
            await client.rpush(self.key, *values)
        finally:
            await client.aclose()
        return {"count": len(values)}


class ListPop(_Redis):
    """Pop values from the head of a list (LPOP) into a file in internal storage.

    Stops when the list is empty, at `maxRecords`, or after `maxDuration` (waiting for new
    values until then). Output `uri` (JSON lines, one value each) and `count`. Popped values
    are gone from the list: for no loss on a crash use `redis.Trigger` or `redis.RealtimeTrigger`.
    """

    type: ClassVar[str] = "redis.ListPop"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.list.ListPop", "io.kestra.plugin.redis.ListPop")
    examples: ClassVar[list[Example]] = [Example("Push jobs, then pop them into a file", _LIST_EXAMPLE, run=False)]

    key: str = Field(description="The list.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    count: int = Field(100, ge=1, description="How many values one LPOP takes.")
    maxRecords: int | None = Field(None, ge=1, description="Stop after this many values.")
    maxDuration: timedelta | None = Field(None, description="Wait for values up to this long (ISO-8601); without it, stop when the list is empty.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        client = await self._client()
        values: list[Any] = []
        deadline = time.monotonic() + self.maxDuration.total_seconds() if self.maxDuration else None
        try:
            while self.maxRecords is None or len(values) < self.maxRecords:
                want = self.count if self.maxRecords is None else min(self.count, self.maxRecords - len(values))
                popped = await client.lpop(self.key, want) or []
                for raw in popped:
                    values.append(_read(self.serdeType, raw, self.key))
                if not popped:
                    if deadline is None or time.monotonic() >= deadline:
                        break
                    raw = await client.blpop([self.key], timeout=max(0.01, min(1.0, deadline - time.monotonic())))
                    check_cancelled()
                    if raw is not None:
                        values.append(_read(self.serdeType, raw[1], self.key))
        finally:
            await client.aclose()
        return {"uri": ctx.put_file(json_lines(values), "values.jsonl"), "count": len(values)}


class Publish(_Redis):
    """Publish messages on a pub/sub channel (PUBLISH). Output `count`: the messages published.

    Pub/sub delivers only to subscribers connected at that moment: for messages that must
    not be lost, use a list or a stream.
    """

    type: ClassVar[str] = "redis.Publish"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.redis.pubsub.Publish", "io.kestra.plugin.redis.Publish")
    examples: ClassVar[list[Example]] = [Example("Publish a JSON notification", _PUBLISH_EXAMPLE, run=False)]

    channel: str = Field(description="The channel.")
    from_: Any = Field(alias="from", description="Messages: a list, one message, or a `tiercel://` file (JSON lines).")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        client = await self._client()
        count = 0
        try:
            for value in items(ctx, self.from_):
                await client.publish(self.channel, serialize(self.serdeType, value))
                count += 1
        finally:
            await client.aclose()
        return {"count": count}


class StreamAdd(_Redis):
    """Append entries to a stream (XADD). Output `ids` (the entry ids) and `count`.

    An entry is a map of fields; each field value is written with `serdeType`. A value that
    is not a map is written as the single field `value`.
    """

    type: ClassVar[str] = "redis.StreamAdd"
    examples: ClassVar[list[Example]] = [Example("Append two orders to a stream", _STREAM_EXAMPLE, run=False)]

    key: str = Field(description="The stream.")
    from_: Any = Field(alias="from", description="Entries: a list of field maps, one map, or a `tiercel://` file (JSON lines).")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    maxLength: int | None = Field(None, ge=1, description="Trim the stream to about this many entries (XADD MAXLEN ~).")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        client = await self._client()
        ids = []
        try:
            for entry in items(ctx, self.from_):
                fields = entry if isinstance(entry, dict) else {"value": entry}
                if not fields:
                    raise TaskError("property `from`: a stream entry needs at least one field")
                encoded = {str(k): serialize(self.serdeType, v) for k, v in fields.items()}
                ids.append((await client.xadd(self.key, encoded, maxlen=self.maxLength, approximate=True)).decode())
        finally:
            await client.aclose()
        return {"ids": ids, "count": len(ids)}


def _read(kind: str, raw: Any, key: str) -> Any:
    try:
        return deserialize(kind, raw)
    except DecodeError as exc:
        raise TaskError(f"key `{key}`: {exc}") from None
