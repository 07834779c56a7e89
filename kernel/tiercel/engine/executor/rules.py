"""The transition rules, one small function each: which state an attempt or a task run goes to.

Each rule reads in a screenful and is tested on its own (tests/engine/test_rules.py); the
executor applies them in :mod:`tiercel.engine.executor.machine`.
"""

from __future__ import annotations

import random
from datetime import timedelta
from enum import Enum

from tiercel.api import Retry, Task
from tiercel.model import TERMINAL, Attempt, State

#: A task whose process died this many times in a row fails: it probably kills its worker.
MAX_LOST_ATTEMPTS = 3


def _secs(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def retry_delay(retry: Retry | None, attempts: list[Attempt], first_at: float, now: float,
                rand: random.Random | None = None) -> float | None:
    """Retry a failed attempt: seconds to wait before the next one, or None when none is left.

    ``maxAttempt`` counts every attempt (lost ones too); ``maxDuration`` bounds the time since
    the first attempt started; a policy with neither retries nothing (Kestra's rule).
    """
    if retry is None:
        return None
    n = len(attempts)
    if retry.maxAttempt is not None and n >= retry.maxAttempt:
        return None
    if retry.maxAttempt is None and retry.maxDuration is None:
        return None
    interval = _secs(retry.interval) or 1.0
    if retry.type == "exponential":
        delay = interval * (retry.delayFactor or 2) ** (n - 1)
        cap = _secs(retry.maxInterval)
        if cap is not None:
            delay = min(delay, cap)
    elif retry.type == "random":
        low = _secs(retry.minInterval) or 0.0
        high = _secs(retry.maxInterval) or max(low, interval)
        delay = (rand or random).uniform(low, high)
    else:
        delay = interval
    limit = _secs(retry.maxDuration)
    if limit is not None and now + delay - first_at > limit:
        return None
    return delay


def warning_on_retry(retry: Retry | None, state: State, attempts: list[Attempt]) -> State:
    """A success that needed retries ends WARNING when the policy says ``warningOnRetry``."""
    if state == State.SUCCESS and len(attempts) > 1 and retry is not None and retry.warningOnRetry:
        return State.WARNING
    return state


def allowed(task: Task | None, state: State) -> State:
    """``allowFailure``: a failure ends WARNING (the flow goes on); ``allowWarning``: a warning is a success."""
    if task is None:
        return state
    if state == State.FAILED and task.allowFailure:
        state = State.WARNING
    if state == State.WARNING and task.allowWarning:
        state = State.SUCCESS
    return state


def lost_again(attempts: list[Attempt]) -> bool:
    """A lost attempt runs again (delivery is at least once) until the task lost its process
    ``MAX_LOST_ATTEMPTS`` times in a row."""
    streak = 0
    for attempt in reversed(attempts):
        if attempt.state != State.LOST:
            break
        streak += 1
    return streak < MAX_LOST_ATTEMPTS


def lost_error(attempts: list[Attempt]) -> str:
    return (f"the process running this task died {MAX_LOST_ATTEMPTS} times in a row "
            f"(the task may be killing its worker, e.g. running out of memory); not retried again")


class OnKill(Enum):
    """What a kill does to one active task run."""

    CANCEL = "cancel"          # a running attempt: the worker is told, and reports KILLED
    KILL_CHILDREN = "children"  # a flowable waiting on child executions: kill them
    WAIT = "wait"              # a flowable: it ends when its children do
    FINISH = "finish"          # anything else (created, retrying, paused): KILLED now


def on_kill(state: State, flowable: bool, running_attempt: bool, has_children: bool) -> OnKill:
    """Kill propagation for one task run that has not ended."""
    if state in TERMINAL:
        raise ValueError("an ended task run is not killed")
    if flowable and state == State.RUNNING:
        return OnKill.KILL_CHILDREN if has_children else OnKill.WAIT
    if state == State.RUNNING and running_attempt:
        return OnKill.CANCEL
    return OnKill.FINISH
