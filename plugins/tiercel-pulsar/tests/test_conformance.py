"""The registry's conformance suite for every pulsar.* component, against a real broker."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from tiercel_pulsar.tasks import Consume, Produce
from tiercel_pulsar.triggers import RealtimeTrigger, Trigger
from tiercel_registry import TaskConformance, TriggerConformance
from tiercel_registry.checks import Options


class _Task(TaskConformance):
    @pytest.fixture
    def example_inputs(self, pulsar_url):
        return {"uri": pulsar_url}


class TestProduce(_Task):
    component = Produce


class TestConsume(_Task):
    component = Consume

    @pytest.fixture
    def conformance_options(self, example_inputs, properties, emit, alive, pulsar_url):
        # long_run needs the broker's address, known only to a fixture: wait for messages that never come
        long_run = {"uri": pulsar_url, "topic": f"never-{uuid.uuid4().hex[:8]}", "subscriptionName": "s",
                    "pollDuration": "PT1H"}
        return Options(example_inputs=example_inputs, long_run=long_run, properties=dict(properties or {}),
                       emit=emit, alive=alive)


class _Source:
    @pytest.fixture
    def topic(self):
        return f"persistent://public/default/conformance-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def properties(self, pulsar_url, topic):
        return {"uri": pulsar_url, "topic": topic, "subscriptionName": "conformance"}

    @pytest.fixture
    def emit(self, pulsar_url, topic):
        def send_one():
            import pulsar

            client = pulsar.Client(pulsar_url, logger=logging.getLogger("tiercel_pulsar.client"))
            try:
                client.create_producer(topic).send(b'{"n": 1}')
            finally:
                client.close()
        return lambda: asyncio.to_thread(send_one)


class TestTrigger(_Source, TriggerConformance):
    component = Trigger

    @pytest.fixture
    def properties(self, pulsar_url, topic):
        return {"uri": pulsar_url, "topic": topic, "subscriptionName": "conformance", "pollDuration": "PT0.2S"}


class TestRealtimeTrigger(_Source, TriggerConformance):
    component = RealtimeTrigger
