"""MQTT tasks: publish messages, and subscribe for a while into a file."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from tiercel.api import Example, RunContext, Task, TaskError
from tiercel.messaging import FROM_DESCRIPTION, SERDE_DESCRIPTION, DecodeError, SerdeType, items, json_lines, serialize
from tiercel_mqtt._common import ID_PROPERTY, Connection, failed, message_variables

_PUBLISH_EXAMPLE = """\
id: mqtt_publish
namespace: company.team
inputs:
  - id: server
    type: STRING
    defaults: tcp://localhost:1883
tasks:
  - id: publish
    type: mqtt.Publish
    server: "{{ inputs.server }}"
    topic: "alerts/{{ execution.id }}"
    serdeType: JSON
    qos: 1
    from:
      - {level: warning, text: disk almost full}
"""

_EXAMPLE = """\
id: mqtt_publish_subscribe
namespace: company.team
inputs:
  - id: server
    type: STRING
    defaults: tcp://localhost:1883
tasks:
  - id: parallel
    type: core.Parallel
    tasks:
      - id: subscribe
        type: mqtt.Subscribe
        server: "{{ inputs.server }}"
        topic: "sensors/{{ execution.id }}/#"
        serdeType: JSON
        maxRecords: 1
        maxDuration: PT3S
      - id: publish
        type: mqtt.Publish
        server: "{{ inputs.server }}"
        topic: "sensors/{{ execution.id }}/kitchen"
        serdeType: JSON
        retain: true  # kept by the broker: the subscriber gets it even if it subscribes after
        from:
          - {celsius: 21.5}
  - id: log
    type: core.Log
    message: "{{ outputs.subscribe.count }} readings in {{ outputs.subscribe.uri }}"
"""

Qos = Literal[0, 1, 2]


def _client(c: Connection, identifier: str | None = None, clean: bool = True) -> Any:
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    host, port = c.address()
    v5 = c.version == "V_5"
    properties = None
    if v5 and not clean:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 7 * 24 * 3600
    return aiomqtt.Client(host, port, username=c.username, password=c.password, identifier=identifier, timeout=10,
                          protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
                          clean_session=None if v5 else clean, clean_start=clean if v5 else 3, properties=properties)


class Publish(Connection, Task):
    """Publish messages on a topic.

    With MQTT 5 each message carries a `message-id` user property (a new UUID), which the
    Tiercel MQTT triggers use to start one execution per message even when the broker
    delivers it twice. With QoS 1 or 2 the task ends once the broker has taken every message.
    """

    type: ClassVar[str] = "mqtt.Publish"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.mqtt.Publish",)
    examples: ClassVar[list[Example]] = [Example("Publish an alert", _PUBLISH_EXAMPLE),
                                         Example("Publish a reading and subscribe to it", _EXAMPLE)]

    topic: str = Field(description="Topic to publish on.")
    from_: Any = Field(alias="from", description=FROM_DESCRIPTION)
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    qos: Qos = Field(1, description="Quality of service: 0 (at most once), 1 (at least once), 2 (exactly once).")
    retain: bool = Field(False, description="The broker keeps the last message and gives it to new subscribers.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import aiomqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        count = 0
        try:
            async with _client(self) as client:
                for value in items(ctx, self.from_):
                    properties = None
                    if self.version == "V_5":
                        properties = Properties(PacketTypes.PUBLISH)
                        properties.UserProperty = [(ID_PROPERTY, uuid.uuid4().hex)]
                    await client.publish(self.topic, serialize(self.serdeType, value), qos=self.qos, retain=self.retain,
                                         properties=properties)
                    count += 1
        except aiomqtt.MqttError as exc:
            raise failed(self, exc) from exc
        ctx.metric("records", count)
        return {"messagesCount": count}


class Subscribe(Connection, Task):
    """Subscribe to topics and write the messages received into a JSON-lines file.

    Stops after `maxRecords` messages or `maxDuration`. With a `clientId`, the broker keeps the
    session between runs (QoS 1 and 2 messages published meanwhile are delivered to the next
    run). Each line is `{value, topic, qos, retain, id, properties}`.
    """

    type: ClassVar[str] = "mqtt.Subscribe"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.mqtt.Subscribe",)
    examples: ClassVar[list[Example]] = [Example("Publish a reading and subscribe to it", _EXAMPLE)]

    topic: str | list[str] = Field(description="Topic filter (`+` and `#` wildcards), or a list of them.")
    qos: Qos = Field(1, description="Quality of service of the subscription.")
    clientId: str | None = Field(None, description="Client id of a persistent session (default: a new clean session).")
    serdeType: SerdeType = Field("STRING", description=SERDE_DESCRIPTION)
    maxRecords: int | None = Field(None, ge=1, description="Stop after this many messages.")
    maxDuration: timedelta = Field(timedelta(seconds=10), description="Stop after this long.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import aiomqtt

        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.maxDuration.total_seconds()
        try:
            async with _client(self, self.clientId, clean=self.clientId is None) as client:
                for topic in [self.topic] if isinstance(self.topic, str) else self.topic:
                    await client.subscribe(topic, qos=self.qos)
                messages = aiter(client.messages)
                while self.maxRecords is None or len(records) < self.maxRecords:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        message = await asyncio.wait_for(anext(messages), left)
                    except TimeoutError:
                        break
                    try:
                        records.append(message_variables(message.topic.value, message.payload, message.qos,
                                                         message.retain, message.properties, self.serdeType))
                    except DecodeError as exc:
                        raise TaskError(f"topic `{message.topic.value}`: {exc}") from None
        except aiomqtt.MqttError as exc:
            raise failed(self, exc) from exc
        ctx.metric("records", len(records))
        return {"uri": ctx.put_file(json_lines(records), "messages.jsonl"), "count": len(records)}
