"""NATS JetStream triggers: one execution per message (durable consumer) or per batch (stream position).

The realtime trigger acknowledges a message once its execution exists; JetStream redelivers
what was not acknowledged within `ackWait` (a crash, a lost connection) and the dedupe key
`stream/sequence` stops a second execution. The polling trigger keeps its position in the
stream in the trigger state, moved on only once the batch's execution exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from tiercel.api import Example, PollingTrigger, RunContext, TriggerEvent
from tiercel.api import RealtimeTrigger as _Realtime
from tiercel.messaging import SERDE_DESCRIPTION, DecodeError, SerdeType, check_cancelled, deserialize, json_lines, once
from tiercel_nats._common import Connection, connect, lost, message_variables, stream_for

_REALTIME_EXAMPLE = """\
id: nats_each_order
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "order {{ trigger.value.sku }} on {{ trigger.subject }} (#{{ trigger.sequence }})"
triggers:
  - id: order
    type: nats.RealtimeTrigger
    url: nats://localhost:4222
    subject: "orders.>"
    durableName: tiercel-orders
    serdeType: JSON
    deadLetterSubject: orders-dead
"""

_TRIGGER_EXAMPLE = """\
id: nats_order_batches
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "{{ trigger.count }} orders in {{ trigger.uri }}"
triggers:
  - id: batch
    type: nats.Trigger
    interval: PT30S
    url: nats://localhost:4222
    subject: "orders.>"
    serdeType: JSON
    maxRecords: 500
"""

_DEAD_LETTER = Field(None, description="Subject that receives messages the serde cannot read, as they were, with "
                                       "`Tiercel-Error` and `Tiercel-Subject` headers. Without it they are logged and "
                                       "terminated (never redelivered).")
_DELIVER = Field("ALL", description="Where a new consumer or trigger starts: ALL (the whole stream) or NEW (what arrives "
                                    "from now on).")


async def _dead_letter(nc: Any, subject: str | None, msg: Any, error: Exception, ctx: RunContext) -> None:
    ctx.logger.error("skipping message %s of `%s`: %s", msg.metadata.sequence.stream, msg.subject, error)
    if subject:
        await nc.publish(subject, msg.data, headers={**(msg.headers or {}), "Tiercel-Error": str(error),
                                                     "Tiercel-Subject": msg.subject})


class RealtimeTrigger(Connection, _Realtime):
    """Start one execution per message of a JetStream subject, through a durable pull consumer.

    The execution sees `trigger.value`, `trigger.subject`, `trigger.headers`, `trigger.stream`,
    `trigger.sequence`, `trigger.delivered` and `trigger.timestamp`. The consumer (default name
    `tiercel-<namespace>-<flowId>-<triggerId>`) keeps the acknowledged position on the server;
    servers sharing it share the messages.
    """

    type: ClassVar[str] = "nats.RealtimeTrigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.nats.RealtimeTrigger",)
    examples: ClassVar[list[Example]] = [Example("One execution per JSON message", _REALTIME_EXAMPLE, run=False)]

    subject: str = Field(description="Subject (wildcards allowed) stored by a JetStream stream.")
    stream: str | None = Field(None, description="Stream name (default: the stream that stores `subject`).")
    durableName: str | None = Field(None, description="Durable consumer name (default: one per trigger).")
    deliverPolicy: str = _DELIVER
    ackWait: timedelta = Field(timedelta(seconds=30), description="A message not acknowledged this long after delivery "
                                                                  "(its server died) is delivered again.")
    batchSize: int = Field(100, ge=1, description="Messages fetched at once (and at most unacknowledged).")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    deadLetterSubject: str | None = _DEAD_LETTER

    async def listen(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        import nats.errors
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        durable = self.durableName or f"tiercel-{ctx.namespace}-{ctx.flow_id}-{self.id}".replace(".", "_")
        unsettled: dict[int, Any] = {}  # handed out (or fetched), neither acked nor nacked
        nc = await connect(self)
        sub = None
        try:
            js = nc.jetstream()
            stream = await stream_for(js, self.subject, self.stream)
            config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy[self.deliverPolicy],
                                    filter_subject=self.subject, ack_wait=self.ackWait.total_seconds(),
                                    max_ack_pending=max(1000, self.batchSize))
            sub = await js.pull_subscribe(self.subject, durable=durable, stream=stream, config=config)
            while True:
                check_cancelled()
                try:
                    batch = await sub.fetch(self.batchSize, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either when nothing came
                    if nc.is_closed:
                        raise ConnectionError("the connection closed") from None
                    continue
                unsettled.update((id(msg), msg) for msg in batch)
                for msg in batch:
                    try:
                        variables = message_variables(msg, self.serdeType)
                    except DecodeError as exc:
                        await _dead_letter(nc, self.deadLetterSubject, msg, exc, ctx)
                        unsettled.pop(id(msg), None)
                        await msg.term()
                        continue
                    ack, nack = once(_settle(unsettled, msg, msg.ack), _settle(unsettled, msg, msg.nak))
                    yield TriggerEvent(variables=variables, key=f"{stream}/{msg.metadata.sequence.stream}",
                                       ack=ack, nack=nack)
        except (ValueError, TypeError):
            raise
        except Exception as exc:
            raise lost(self, exc) from exc
        finally:
            if not nc.is_closed:
                try:
                    await _hand_back(sub, unsettled)
                    await nc.flush(timeout=2)  # the last acks reach the server
                finally:
                    await nc.close()


def _settle(unsettled: dict[int, Any], msg: Any, call: Any) -> Any:
    async def settle() -> None:
        unsettled.pop(id(msg), None)
        await call()
    return settle


async def _hand_back(sub: Any, unsettled: dict[int, Any]) -> None:
    """Give back what this listener holds, so the next one gets it now rather than after ackWait.

    The fetch requests of this subscription stay on the server for up to a second: messages
    are handed back with that delay, or the server would deliver them to this closed one.
    """
    import nats.errors

    if sub is not None:
        try:  # messages already on their way to this subscription
            unsettled.update((id(msg), msg) for msg in await sub.fetch(100, timeout=0.05))
        except (nats.errors.TimeoutError, TimeoutError):
            pass
    for msg in unsettled.values():
        await msg.nak(delay=1.5)


class Trigger(Connection, PollingTrigger):
    """Every `interval`, read the next messages of a JetStream subject into one file and start one execution.

    The execution sees `trigger.uri` (JSON lines as `nats.Consume` writes them),
    `trigger.count` and `trigger.first`/`trigger.last` (stream sequences). The trigger keeps
    its position in the stream, and the end of the batch in flight, in its own state, and
    moves the position only once the execution exists: after a crash exactly the same range
    is read again, under the same dedupe key. It needs no consumer on the server.
    """

    type: ClassVar[str] = "nats.Trigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.nats.Trigger",)
    examples: ClassVar[list[Example]] = [Example("One execution per batch of messages", _TRIGGER_EXAMPLE, run=False)]

    subject: str = Field(description="Subject (wildcards allowed) stored by a JetStream stream.")
    stream: str | None = Field(None, description="Stream name (default: the stream that stores `subject`).")
    deliverPolicy: str = _DELIVER
    maxRecords: int = Field(100, ge=1, description="Most messages in one batch.")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    deadLetterSubject: str | None = _DEAD_LETTER

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        import nats.js.errors

        nc = await connect(self)
        try:
            js = nc.jetstream()
            stream = await stream_for(js, self.subject, self.stream)
            info = await js.stream_info(stream)
            position = ctx.state.get("position")  # the last sequence turned into an execution
            if position is None:
                position = info.state.last_seq if self.deliverPolicy == "NEW" else 0
                ctx.state["position"] = position
            # a batch whose execution may exist but was never acknowledged is read again, exactly
            upto = ctx.state.get("pending") or info.state.last_seq
            records, last = [], position
            while len(records) < self.maxRecords and last < upto:
                try:
                    msg = await js.get_msg(stream, seq=last + 1, subject=self.subject, next=True)
                except nats.js.errors.NotFoundError:
                    break
                last = msg.seq
                try:
                    records.append({"value": deserialize(self.serdeType, msg.data), "subject": msg.subject,
                                    "headers": dict(msg.headers or {}), "stream": stream, "sequence": msg.seq})
                except DecodeError as exc:
                    ctx.logger.error("skipping message %s of `%s`: %s", msg.seq, msg.subject, exc)
                    if self.deadLetterSubject:
                        await nc.publish(self.deadLetterSubject, msg.data, headers={
                            **(msg.headers or {}), "Tiercel-Error": str(exc), "Tiercel-Subject": msg.subject})
                        await nc.flush()
            if not records:
                ctx.state["position"] = last  # only unreadable messages (or none): move past them
                ctx.state.pop("pending", None)
                return None
            ctx.state["pending"] = last
        except (ValueError, TypeError):
            raise
        except Exception as exc:
            raise lost(self, exc) from exc
        finally:
            await nc.close()

        async def ack() -> None:
            ctx.state["position"] = max(last, ctx.state.get("position", 0))
            ctx.state.pop("pending", None)

        first_ack, nack = once(ack)
        key = f"{stream}/{position + 1}-{last}/{hashlib.sha256(self.subject.encode()).hexdigest()[:8]}"
        return TriggerEvent(variables={"uri": ctx.put_file(json_lines(records), "messages.jsonl"), "count": len(records),
                                       "first": records[0]["sequence"], "last": last, "stream": stream},
                            key=key, ack=first_ack, nack=nack)
