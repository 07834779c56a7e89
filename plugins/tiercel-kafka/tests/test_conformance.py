"""The registry's conformance suite for every kafka.* component, against a real broker."""

from __future__ import annotations

import uuid

import pytest

from tiercel_kafka.tasks import Consume, Produce
from tiercel_kafka.triggers import RealtimeTrigger, Trigger
from tiercel_registry import TaskConformance, TriggerConformance


class _Source:
    @pytest.fixture
    def topic(self):
        return f"conformance-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def emit(self, kafka_bootstrap, topic):
        async def produce_one():
            import aiokafka

            producer = aiokafka.AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            try:
                await producer.send_and_wait(topic, b'{"n": 1}')
            finally:
                await producer.stop()
        return produce_one


class TestProduce(TaskConformance):
    component = Produce

    @pytest.fixture
    def example_inputs(self, kafka_bootstrap):
        return {"bootstrap": kafka_bootstrap}


class TestConsume(TaskConformance):
    component = Consume

    @pytest.fixture
    def example_inputs(self, kafka_bootstrap):
        return {"bootstrap": kafka_bootstrap}


class TestTrigger(_Source, TriggerConformance):
    component = Trigger

    @pytest.fixture
    def properties(self, kafka_bootstrap, topic):
        return {"properties": {"bootstrap.servers": kafka_bootstrap}, "topic": topic, "groupId": f"g-{topic}"}


class TestRealtimeTrigger(_Source, TriggerConformance):
    component = RealtimeTrigger

    @pytest.fixture
    def properties(self, kafka_bootstrap, topic):
        return {"properties": {"bootstrap.servers": kafka_bootstrap, "session.timeout.ms": 2000,
                               "heartbeat.interval.ms": 500}, "topic": topic, "groupId": f"g-{topic}"}
