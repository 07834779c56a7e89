"""run() of the runnable core tasks, with every property already rendered (as the engine does)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tiercel.api import TaskError
from tiercel.core.tasks import Fail, Log, OutputValues, Return, Sleep


def run(coro):
    return asyncio.run(coro)


def test_log_writes_one_line_at_the_level(ctx):
    assert run(Log(id="l", message="hello, world").run(ctx)) is None
    run(Log(id="l", message="careful", level="WARN").run(ctx))
    run(Log(id="l", message="fine print", level="TRACE").run(ctx))
    assert ctx.lines() == [(logging.INFO, "hello, world"), (logging.WARNING, "careful"), (5, "fine print")]


def test_log_list_writes_several_lines(ctx):
    run(Log(id="l", message=["one", 2, "three"], level="ERROR").run(ctx))
    assert ctx.lines() == [(logging.ERROR, "one"), (logging.ERROR, "2"), (logging.ERROR, "three")]


def test_echo_format_is_logged(ctx):
    run(Log.model_validate({"id": "e", "format": "old style"}).run(ctx))
    assert ctx.lines() == [(logging.INFO, "old style")]


def test_return_outputs_value(ctx):
    assert run(Return(id="r", format="42").run(ctx)) == {"value": "42"}
    assert run(Return(id="r", format={"a": 1}).run(ctx)) == {"value": '{"a":1}'}  # compact, as Kestra prints JSON
    assert run(Return(id="r").run(ctx)) == {"value": None}


def test_output_values_keep_their_types(ctx):
    values = {"n": 3, "s": "x", "nested": {"l": [1, 2]}}
    assert run(OutputValues(id="o", values=values).run(ctx)) == {"values": values}


def test_sleep_sleeps(ctx):
    start = time.monotonic()
    run(Sleep(id="s", duration="PT0.2S").run(ctx))
    assert 0.19 <= time.monotonic() - start < 2


def test_sleep_is_cancellable(ctx):
    async def main():
        task = asyncio.ensure_future(Sleep(id="s", duration="PT1H").run(ctx))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    start = time.monotonic()
    run(main())
    assert time.monotonic() - start < 2


def test_sleep_honours_a_timeout(ctx):
    async def main():
        await asyncio.wait_for(Sleep(id="s", duration="PT1H").run(ctx), 0.05)

    with pytest.raises(TimeoutError):
        run(main())


def test_fail_without_condition_always_fails(ctx):
    with pytest.raises(TaskError, match="^Task failure$"):
        run(Fail(id="f").run(ctx))
    with pytest.raises(TaskError, match="^amount must be positive$"):
        run(Fail(id="f", errorMessage="amount must be positive").run(ctx))


@pytest.mark.parametrize("condition", ["false", "False", "0", "-0", "", False, 0])
def test_fail_on_a_falsy_condition_succeeds(ctx, condition):
    assert run(Fail(id="f", condition=condition, errorMessage="no").run(ctx)) is None


@pytest.mark.parametrize("condition", ["true", "1", "yes", "anything", True, 1])
def test_fail_on_a_truthy_condition_fails(ctx, condition):
    with pytest.raises(TaskError, match="boom"):
        run(Fail(id="f", condition=condition, errorMessage="boom").run(ctx))
