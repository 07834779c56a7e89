"""NATS tasks: publish, request/reply, JetStream consume into a file, and the key-value store."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from tiercel.api import Example, RunContext, Task, TaskError
from tiercel.messaging import (
    FROM_DESCRIPTION,
    SERDE_DESCRIPTION,
    DecodeError,
    SerdeType,
    deserialize,
    items,
    json_lines,
    serialize,
)
from tiercel_nats._common import Connection, connect, lost, message_variables, stream_for

_PUBLISH_EXAMPLE = """\
id: nats_publish_request
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: nats://localhost:4222
tasks:
  - id: publish
    type: nats.Publish
    url: "{{ inputs.url }}"
    subject: "orders.{{ execution.id }}"
    serdeType: JSON
    from:
      - {sku: A-1, quantity: 2}
      - {sku: B-7, quantity: 1}
  - id: put
    type: nats.kv.Put
    url: "{{ inputs.url }}"
    bucket: settings
    key: "last-run"
    value: "{{ execution.id }}"
  - id: get
    type: nats.kv.Get
    url: "{{ inputs.url }}"
    bucket: settings
    key: "last-run"
  - id: log
    type: core.Log
    message: "sent {{ outputs.publish.messagesCount }}; last run {{ outputs.get.value }}"
  - id: delete
    type: nats.kv.Delete
    url: "{{ inputs.url }}"
    bucket: settings
    key: "last-run"
"""

_CONSUME_EXAMPLE = """\
id: nats_consume
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: nats://localhost:4222
tasks:
  - id: consume
    type: nats.Consume
    url: "{{ inputs.url }}"
    subject: "orders.>"
    durableName: nightly-report
    serdeType: JSON
    maxRecords: 1000
    pollDuration: PT1S
  - id: log
    type: core.Log
    message: "{{ outputs.consume.count }} orders in {{ outputs.consume.uri }}"
"""

_REQUEST_EXAMPLE = """\
id: nats_request
namespace: company.team
tasks:
  - id: price
    type: nats.Request
    url: nats://localhost:4222
    subject: prices.lookup
    serdeType: JSON
    data: {sku: A-1}
    timeout: PT2S
  - id: log
    type: core.Log
    message: "A-1 costs {{ outputs.price.value.amount }}"
"""


class Publish(Connection, Task):
    """Publish messages on a subject.

    With `jetStream: true` each message waits for the stream's acknowledgement (it is stored)
    and carries a `Nats-Msg-Id` header, so the stream itself drops a duplicate publish
    within its duplicate window; otherwise they are published on core NATS and flushed.
    """

    type: ClassVar[str] = "nats.Publish"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.nats.Produce", "nats.Produce")
    examples: ClassVar[list[Example]] = [Example("Publish JSON messages, then use the key-value store", _PUBLISH_EXAMPLE)]

    subject: str = Field(description="Subject to publish on.")
    from_: Any = Field(alias="from", description=FROM_DESCRIPTION)
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    headers: dict[str, str] = Field(default_factory=dict, description="Headers of every message.")
    jetStream: bool = Field(False, description="Wait for the JetStream stream that stores the subject to acknowledge each message.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import uuid

        nc = await connect(self)
        count = 0
        try:
            js = nc.jetstream() if self.jetStream else None
            for value in items(ctx, self.from_):
                payload = serialize(self.serdeType, value)
                if js is not None:
                    await js.publish(self.subject, payload, headers={**self.headers, "Nats-Msg-Id": uuid.uuid4().hex})
                else:
                    await nc.publish(self.subject, payload, headers=self.headers or None)
                count += 1
            await nc.flush()
        except Exception as exc:
            raise lost(self, exc) from exc
        finally:
            await nc.close()
        ctx.metric("records", count)
        return {"messagesCount": count}


class Consume(Connection, Task):
    """Read the messages of a JetStream subject into a JSON-lines file, then acknowledge them.

    With `durableName` the consumer remembers what it acknowledged, so the next run goes on
    from there; without, it reads according to `deliverPolicy` each time. Stops after
    `maxRecords`, once `pollDuration` passes without a message, or after `maxDuration`. Each
    line is `{value, subject, headers, stream, sequence, delivered, timestamp}`.
    """

    type: ClassVar[str] = "nats.Consume"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.nats.Consume",)
    examples: ClassVar[list[Example]] = [Example("Read what a durable consumer has not yet seen", _CONSUME_EXAMPLE, run=False)]

    subject: str = Field(description="Subject (wildcards allowed) of a JetStream stream.")
    stream: str | None = Field(None, description="Stream name (default: the stream that stores `subject`).")
    durableName: str | None = Field(None, description="Durable consumer name; its acknowledged position is kept by the server.")
    deliverPolicy: str = Field("ALL", description="Where a new consumer starts: ALL, NEW, LAST or LAST_PER_SUBJECT.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    maxRecords: int | None = Field(None, ge=1, description="Stop after this many messages.")
    maxDuration: timedelta | None = Field(None, description="Stop after this long.")
    pollDuration: timedelta = Field(timedelta(seconds=1), description="Stop once no message came for this long.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import nats.errors
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        nc = await connect(self)
        try:
            js = nc.jetstream()
            stream = await stream_for(js, self.subject, self.stream)
            config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy[self.deliverPolicy],
                                    filter_subject=self.subject)
            sub = await js.pull_subscribe(self.subject, durable=self.durableName, stream=stream, config=config)
            records, messages, started = [], [], time.monotonic()
            while self.maxRecords is None or len(records) < self.maxRecords:
                if self.maxDuration is not None and time.monotonic() - started >= self.maxDuration.total_seconds():
                    break
                want = min(100, (self.maxRecords or 100) - len(records))
                try:
                    batch = await sub.fetch(want, timeout=self.pollDuration.total_seconds())
                except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either when nothing came
                    break
                for msg in batch:
                    try:
                        records.append(message_variables(msg, self.serdeType))
                    except DecodeError as exc:
                        raise TaskError(f"subject `{msg.subject}`: message {msg.metadata.sequence.stream}: {exc}") from None
                    messages.append(msg)
            uri = ctx.put_file(json_lines(records), "messages.jsonl")
            for msg in messages:
                await msg.ack()
            await nc.flush()
            if not self.durableName:
                await sub.unsubscribe()
        except (TaskError, ValueError):
            raise
        except Exception as exc:
            raise lost(self, exc) from exc
        finally:
            await nc.close()
        ctx.metric("records", len(records))
        return {"uri": uri, "count": len(records)}


class Request(Connection, Task):
    """Send one request on a subject and wait for the first reply (NATS request/reply)."""

    type: ClassVar[str] = "nats.Request"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.nats.Request",)
    examples: ClassVar[list[Example]] = [Example("Ask a service for a price", _REQUEST_EXAMPLE, run=False)]

    subject: str = Field(description="Subject a service answers on.")
    data: Any = Field(None, description="The request payload.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION + " Used for the request and the reply.")
    headers: dict[str, str] = Field(default_factory=dict, description="Headers of the request.")
    timeout: timedelta = Field(timedelta(seconds=5), description="How long to wait for a reply.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import nats.errors

        nc = await connect(self)
        try:
            reply = await nc.request(self.subject, serialize(self.serdeType, self.data if self.data is not None else ""),
                                     timeout=self.timeout.total_seconds(), headers=self.headers or None)
        except nats.errors.NoRespondersError:
            raise TaskError(f"nobody answers requests on `{self.subject}`") from None
        except nats.errors.TimeoutError:
            raise TaskError(f"no reply on `{self.subject}` within {self.timeout.total_seconds():g} s") from None
        except Exception as exc:
            raise lost(self, exc) from exc
        finally:
            await nc.close()
        try:
            value = deserialize(self.serdeType, reply.data)
        except DecodeError as exc:
            raise TaskError(f"the reply on `{self.subject}`: {exc}") from None
        return {"value": value, "headers": dict(reply.headers or {})}


class _Kv(Connection, Task):
    bucket: str = Field(description="Key-value bucket.")
    key: str = Field(description="Key.")

    async def _store(self, nc: Any, create: bool = False) -> Any:
        import nats.js.errors

        js = nc.jetstream()
        try:
            return await js.key_value(self.bucket)
        except nats.js.errors.BucketNotFoundError:
            if not create:
                raise TaskError(f"key-value bucket `{self.bucket}` does not exist") from None
            return await js.create_key_value(bucket=self.bucket)


class KvPut(_Kv):
    """Set a key in a key-value bucket (the bucket is created when missing); outputs the new revision."""

    type: ClassVar[str] = "nats.kv.Put"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.nats.kv.Put",)
    examples: ClassVar[list[Example]] = [Example("Publish, then use the key-value store", _PUBLISH_EXAMPLE)]

    value: Any = Field(description="The value.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        nc = await connect(self)
        try:
            kv = await self._store(nc, create=True)
            revision = await kv.put(self.key, serialize(self.serdeType, self.value))
        finally:
            await nc.close()
        return {"revision": revision}


class KvGet(_Kv):
    """Read a key of a key-value bucket: `value` (null when the key is missing) and its `revision`."""

    type: ClassVar[str] = "nats.kv.Get"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.nats.kv.Get",)
    examples: ClassVar[list[Example]] = [Example("Publish, then use the key-value store", _PUBLISH_EXAMPLE)]

    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import nats.js.errors

        nc = await connect(self)
        try:
            kv = await self._store(nc)
            try:
                entry = await kv.get(self.key)
            except nats.js.errors.KeyNotFoundError:
                return {"value": None, "revision": None}
        finally:
            await nc.close()
        try:
            return {"value": deserialize(self.serdeType, entry.value), "revision": entry.revision}
        except DecodeError as exc:
            raise TaskError(f"key `{self.key}`: {exc}") from None


class KvDelete(_Kv):
    """Delete a key of a key-value bucket (its history is kept until purged)."""

    type: ClassVar[str] = "nats.kv.Delete"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.nats.kv.Delete",)
    examples: ClassVar[list[Example]] = [Example("Publish, then use the key-value store", _PUBLISH_EXAMPLE)]

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        nc = await connect(self)
        try:
            deleted = await (await self._store(nc)).delete(self.key)
        finally:
            await nc.close()
        return {"deleted": bool(deleted)}
