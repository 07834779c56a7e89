"""The registry's conformance suite for every redis.* component, against a real Redis."""

from __future__ import annotations

import uuid

import pytest
from tiercel_redis import tasks
from tiercel_redis.triggers import RealtimeTrigger, Trigger

from tiercel_registry import TaskConformance, TriggerConformance
from tiercel_registry.checks import Options


class _Task(TaskConformance):
    @pytest.fixture
    def example_inputs(self, redis_url):
        return {"url": redis_url}


class TestSet(_Task):
    component = tasks.Set


class TestGet(_Task):
    component = tasks.Get


class TestDelete(_Task):
    component = tasks.Delete


class TestListPush(_Task):
    component = tasks.ListPush


class TestListPop(_Task):
    component = tasks.ListPop

    @pytest.fixture
    def conformance_options(self, example_inputs, properties, emit, alive, redis_url):
        # long_run needs the server's address, known only to a fixture: wait for values that never come
        long_run = {"url": redis_url, "key": f"never-{uuid.uuid4().hex[:8]}", "maxDuration": "PT1H"}
        return Options(example_inputs=example_inputs, long_run=long_run, properties=dict(properties or {}),
                       emit=emit, alive=alive)


class TestPublish(_Task):
    component = tasks.Publish


class TestStreamAdd(_Task):
    component = tasks.StreamAdd


class _ListSource:
    @pytest.fixture
    def key(self):
        return f"conformance-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def properties(self, redis_url, key):
        return {"url": redis_url, "key": key}

    @pytest.fixture
    def emit(self, redis_url, key):
        async def push_one():
            import redis.asyncio as aioredis

            client = aioredis.from_url(redis_url)
            try:
                await client.rpush(key, '{"n": 1}')
            finally:
                await client.aclose()
        return push_one


class TestTrigger(_ListSource, TriggerConformance):
    component = Trigger


class TestRealtimeTrigger(_ListSource, TriggerConformance):
    component = RealtimeTrigger
