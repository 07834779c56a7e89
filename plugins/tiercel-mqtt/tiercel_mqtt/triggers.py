"""MQTT triggers: QoS 1 in a persistent session, each message acknowledged (PUBACK) after its execution exists.

The broker keeps the trigger's session (its client id) while no server is connected, so
messages published meanwhile are delivered when one connects again, and it resends the
messages whose PUBACK never came. MQTT has no broker-side message id: the dedupe key is the
`message-id` user property (MQTT 5) that `mqtt.Publish` sets; a message without one is
delivered at least once. paho-mqtt is used directly for its manual acknowledgements.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from tiercel.api import Example, PollingTrigger, RunContext, TriggerEvent
from tiercel.api import RealtimeTrigger as _Realtime
from tiercel.messaging import SERDE_DESCRIPTION, DecodeError, SerdeType, json_lines, once
from tiercel_mqtt._common import Connection, failed, message_id, message_variables

_REALTIME_EXAMPLE = """\
id: mqtt_each_reading
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "{{ trigger.topic }}: {{ trigger.value.celsius }} °C"
triggers:
  - id: reading
    type: mqtt.RealtimeTrigger
    server: tcp://localhost:1883
    topic: "sensors/+/temperature"
    serdeType: JSON
    deadLetterTopic: sensors/dead
"""

_TRIGGER_EXAMPLE = """\
id: mqtt_reading_batches
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "{{ trigger.count }} readings in {{ trigger.uri }}"
triggers:
  - id: batch
    type: mqtt.Trigger
    interval: PT1M
    server: tcp://localhost:1883
    topic: "sensors/#"
    serdeType: JSON
    maxRecords: 1000
"""

_TOPIC = Field(description="Topic filter (`+` and `#` wildcards), or a list of them.")
_CLIENT_ID = Field(None, description="Client id of the trigger's persistent session (default: "
                                     "`tiercel-<namespace>-<flowId>-<triggerId>`). Two servers must not share it.")
_QOS = Field(1, description="Quality of service of the subscription: 1 (at least once, acknowledged after the execution "
                            "exists) or 2.")
_DEAD_LETTER = Field(None, description="Topic that receives payloads the serde cannot read, as they were (QoS 1). "
                                       "Without it they are logged and acknowledged.")


class _Lost:
    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Session:
    """A paho-mqtt client in its own thread, handing messages to the event loop; acks are sent by hand."""

    def __init__(self, trigger: Any, ctx: RunContext) -> None:
        import paho.mqtt.client as mqtt

        self.trigger, self.loop = trigger, asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.connected: asyncio.Future[Any] = self.loop.create_future()
        self.v5 = trigger.version == "V_5"
        client_id = trigger.clientId or f"tiercel-{ctx.namespace}-{ctx.flow_id}-{trigger.id}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, manual_ack=True,
                                  protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
                                  clean_session=None if self.v5 else False)
        if trigger.username:
            self.client.username_pw_set(trigger.username, trigger.password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda client, userdata, message: self._post(self.queue.put_nowait, message)
        self.client.on_disconnect = self._on_disconnect

    def _post(self, callback: Any, *args: Any) -> None:
        """Run *callback* on the event loop, from paho's thread; nothing to tell once the loop has closed."""
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(callback, *args)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if not reason.is_failure:
            topics = [self.trigger.topic] if isinstance(self.trigger.topic, str) else self.trigger.topic
            client.subscribe([(t, self.trigger.qos) for t in topics])
        self._post(lambda: self.connected.done() or self.connected.set_result(reason))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._post(self.queue.put_nowait, _Lost(str(reason)))

    async def open(self) -> _Session:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        host, port = self.trigger.address()
        kwargs: dict[str, Any] = {}
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 7 * 24 * 3600  # keep the session (and its messages) a week
            kwargs = {"clean_start": False, "properties": properties}
        try:
            await asyncio.to_thread(self.client.connect, host, port, 30, **kwargs)
            self.client.loop_start()
            reason = await asyncio.wait_for(asyncio.shield(self.connected), 10)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise failed(self.trigger, exc) from exc
        if reason.is_failure:
            self.close()
            raise failed(self.trigger, ConnectionError(f"the broker refused the connection: {reason}"))
        return self

    async def next(self) -> Any:
        item = await self.queue.get()
        if isinstance(item, _Lost):
            raise failed(self.trigger, ConnectionError(f"the connection was lost: {item.reason}"))
        return item

    def ack(self, message: Any) -> None:
        if message.qos > 0:
            self.client.ack(message.mid, message.qos)

    async def dead_letter(self, topic: str | None, message: Any, error: Exception, ctx: RunContext) -> None:
        ctx.logger.error("skipping a message on `%s`: %s", message.topic, error)
        if topic:
            info = self.client.publish(topic, message.payload, qos=1)
            await asyncio.to_thread(info.wait_for_publish, 10)
        self.ack(message)

    def close(self) -> None:
        self.client.on_disconnect = None
        self.client.disconnect()
        self.client.loop_stop()


class RealtimeTrigger(Connection, _Realtime):
    """Start one execution per message on a topic filter, as messages arrive (QoS 1, persistent session).

    The execution sees `trigger.value`, `trigger.topic`, `trigger.qos`, `trigger.retain`,
    `trigger.id` (the `message-id` user property) and `trigger.properties` (MQTT 5 user
    properties). A message is acknowledged once its execution exists; one whose execution
    could not be stored is acknowledged never and comes back when the trigger reconnects.
    """

    type: ClassVar[str] = "mqtt.RealtimeTrigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.mqtt.RealtimeTrigger",)
    examples: ClassVar[list[Example]] = [Example("One execution per sensor reading", _REALTIME_EXAMPLE, run=False)]

    topic: str | list[str] = _TOPIC
    qos: Literal[1, 2] = _QOS
    clientId: str | None = _CLIENT_ID
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    deadLetterTopic: str | None = _DEAD_LETTER

    async def listen(self, ctx: RunContext) -> AsyncIterator[TriggerEvent]:
        session = await _Session(self, ctx).open()
        try:
            while True:
                message = await session.next()
                try:
                    variables = message_variables(message.topic, message.payload, message.qos, message.retain,
                                                  message.properties, self.serdeType)
                except DecodeError as exc:
                    await session.dead_letter(self.deadLetterTopic, message, exc, ctx)
                    continue

                async def ack(message: Any = message) -> None:
                    session.ack(message)

                first_ack, nack = once(ack)  # no nack in MQTT: the broker resends it when we reconnect
                yield TriggerEvent(variables=variables, key=f"mqtt/{variables['id']}" if variables["id"] else None,
                                   ack=first_ack, nack=nack)
        finally:
            session.close()


class Trigger(Connection, PollingTrigger):
    """Every `interval`, collect the messages of the trigger's persistent session into one file and start one execution.

    The execution sees `trigger.uri` (JSON lines as `mqtt.Subscribe` writes them) and
    `trigger.count`. The messages are acknowledged once the execution exists; the batch's ids
    stay in the trigger state until then, so after a crash the same messages, resent by the
    broker, form the same batch under the same dedupe key.
    """

    type: ClassVar[str] = "mqtt.Trigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.mqtt.Trigger",)
    examples: ClassVar[list[Example]] = [Example("One execution per batch of readings", _TRIGGER_EXAMPLE, run=False)]

    topic: str | list[str] = _TOPIC
    qos: Literal[1, 2] = _QOS
    clientId: str | None = _CLIENT_ID
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    maxRecords: int = Field(100, ge=1, description="Most messages in one batch.")
    pollDuration: timedelta = Field(timedelta(seconds=1), description="How long each poll listens for messages.")
    deadLetterTopic: str | None = _DEAD_LETTER

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        pending = set(ctx.state.get("pending") or ())  # ids of a batch whose execution may exist, never acked
        session = await _Session(self, ctx).open()
        records, taken, ids = [], [], []
        try:
            deadline = time.monotonic() + self.pollDuration.total_seconds()
            while len(records) < self.maxRecords and (not pending or len(ids) < len(pending)):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    message = await asyncio.wait_for(session.next(), left)
                except TimeoutError:
                    break
                ident = message_id(message.properties) or "#" + hashlib.sha256(message.topic.encode() + b"\0" +
                                                                                message.payload).hexdigest()[:16]
                if pending and ident not in pending:
                    continue  # not part of the batch being replayed: left unacknowledged, it comes back next time
                try:
                    records.append(message_variables(message.topic, message.payload, message.qos, message.retain,
                                                     message.properties, self.serdeType))
                except DecodeError as exc:
                    await session.dead_letter(self.deadLetterTopic, message, exc, ctx)
                    continue
                taken.append(message)
                ids.append(ident)
            if not records:
                ctx.state.pop("pending", None)
                session.close()
                return None
            ctx.state["pending"] = ids
            uri = ctx.put_file(json_lines(records), "messages.jsonl")
        except BaseException:
            session.close()
            raise

        async def ack() -> None:
            for message in taken:
                session.ack(message)
            await asyncio.sleep(0.05)  # let the client thread send the PUBACKs before disconnecting
            session.close()
            ctx.state.pop("pending", None)

        async def nack() -> None:
            session.close()  # unacknowledged: the broker resends them on the next connection

        first_ack, first_nack = once(ack, nack)
        key = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:32]
        return TriggerEvent(variables={"uri": uri, "count": len(records)}, key=f"mqtt/{key}", ack=first_ack,
                            nack=first_nack)
