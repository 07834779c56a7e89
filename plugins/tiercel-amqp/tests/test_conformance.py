"""The registry's conformance suite for every amqp.* component, against the machine's RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tiercel_amqp import tasks
from tiercel_amqp.triggers import RealtimeTrigger, Trigger
from tiercel_registry import TaskConformance, TriggerConformance


class _Task(TaskConformance):
    @pytest.fixture
    def example_inputs(self, amqp_url):
        return {"url": amqp_url}


class TestPublish(_Task):
    component = tasks.Publish


class TestConsume(_Task):
    component = tasks.Consume


class TestDeclareQueue(_Task):
    component = tasks.DeclareQueue


class TestDeclareExchange(_Task):
    component = tasks.DeclareExchange


class TestQueueBind(_Task):
    component = tasks.QueueBind


class _Queue:
    @pytest.fixture
    def queue(self, amqp_url):
        import aio_pika

        name = f"conformance-{uuid.uuid4().hex[:8]}"

        async def declare():
            connection = await aio_pika.connect(amqp_url)
            async with connection:
                await (await connection.channel()).declare_queue(name, durable=False, arguments={"x-expires": 60_000})

        asyncio.run(declare())
        return name

    @pytest.fixture
    def properties(self, amqp_url, queue):
        return {"url": amqp_url, "queue": queue}

    @pytest.fixture
    def emit(self, amqp_url, queue):
        async def publish_one():
            import aio_pika

            connection = await aio_pika.connect(amqp_url)
            async with connection:
                channel = await connection.channel()
                await channel.default_exchange.publish(aio_pika.Message(b'{"n": 1}', message_id=uuid.uuid4().hex),
                                                       routing_key=queue)
        return publish_one


class TestTrigger(_Queue, TriggerConformance):
    component = Trigger


class TestRealtimeTrigger(_Queue, TriggerConformance):
    component = RealtimeTrigger
