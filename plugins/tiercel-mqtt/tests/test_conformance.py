"""The registry's conformance suite for every mqtt.* component, against a private mosquitto."""

from __future__ import annotations

import uuid

import pytest

from tiercel_mqtt import tasks
from tiercel_mqtt.triggers import RealtimeTrigger, Trigger
from tiercel_registry import TaskConformance, TriggerConformance


class _Task(TaskConformance):
    @pytest.fixture
    def example_inputs(self, mqtt_url):
        return {"server": mqtt_url}


class TestPublish(_Task):
    component = tasks.Publish


class TestSubscribe(_Task):
    component = tasks.Subscribe


class _Topic:
    @pytest.fixture
    def topic(self):
        return f"conformance/{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def properties(self, mqtt_url, topic):
        return {"server": mqtt_url, "topic": topic, "clientId": f"conformance-{uuid.uuid4().hex[:8]}"}

    @pytest.fixture
    def emit(self, mqtt_url, topic):
        async def publish_one():
            import aiomqtt
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            host, port = mqtt_url.removeprefix("mqtt://").split(":")
            properties = Properties(PacketTypes.PUBLISH)
            properties.UserProperty = [("message-id", uuid.uuid4().hex)]
            async with aiomqtt.Client(host, int(port), protocol=aiomqtt.ProtocolVersion.V5) as client:
                await client.publish(topic, b'{"n": 1}', qos=1, properties=properties)
        return publish_one


class TestTrigger(_Topic, TriggerConformance):
    component = Trigger


class TestRealtimeTrigger(_Topic, TriggerConformance):
    component = RealtimeTrigger
