"""The registry's conformance suite for every nats.* component, against a private nats-server with JetStream."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tiercel_nats import tasks
from tiercel_nats.triggers import RealtimeTrigger, Trigger
from tiercel_registry import TaskConformance, TriggerConformance


class _Task(TaskConformance):
    @pytest.fixture
    def example_inputs(self, nats_url):
        return {"url": nats_url}


class TestPublish(_Task):
    component = tasks.Publish


class TestConsume(_Task):
    component = tasks.Consume

    @pytest.fixture
    def example_inputs(self, nats_url):
        import nats
        from nats.js.api import StreamConfig

        async def create():  # the example reads `orders.>`: a stream must store it
            nc = await nats.connect(nats_url)
            await nc.jetstream().add_stream(StreamConfig(name="ORDERS", subjects=["orders.>"]))
            await nc.close()

        asyncio.run(create())
        return {"url": nats_url}


class TestRequest(TaskConformance):
    component = tasks.Request  # its example needs a service answering: validated, not run


class TestKvGet(_Task):
    component = tasks.KvGet


class TestKvPut(_Task):
    component = tasks.KvPut


class TestKvDelete(_Task):
    component = tasks.KvDelete


class _Stream:
    @pytest.fixture
    def stream(self, nats_url):
        import nats
        from nats.js.api import StreamConfig

        name = f"conformance{uuid.uuid4().hex[:8]}"

        async def create():
            nc = await nats.connect(nats_url)
            await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
            await nc.close()

        asyncio.run(create())
        return name

    @pytest.fixture
    def properties(self, nats_url, stream):
        return {"url": nats_url, "subject": f"{stream}.>"}

    @pytest.fixture
    def emit(self, nats_url, stream):
        async def publish_one():
            import nats

            nc = await nats.connect(nats_url)
            await nc.jetstream().publish(f"{stream}.new", b'{"n": 1}')
            await nc.close()
        return publish_one


class TestTrigger(_Stream, TriggerConformance):
    component = Trigger


class TestRealtimeTrigger(_Stream, TriggerConformance):
    component = RealtimeTrigger
