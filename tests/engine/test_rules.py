"""Each transition rule on its own (tiercel.engine.executor.rules)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tiercel.api import Retry, Task
from tiercel.engine.executor import rules
from tiercel.model import Attempt, State


def attempts(*states: State) -> list[Attempt]:
    return [Attempt(i + 1, s, started_at=100.0) for i, s in enumerate(states)]


@pytest.mark.parametrize("retry, tried, delay", [
    (None, 1, None),
    (Retry(type="constant", interval=timedelta(seconds=5)), 1, None),  # neither maxAttempt nor maxDuration
    (Retry(type="constant", interval=timedelta(seconds=5), maxAttempt=3), 1, 5.0),
    (Retry(type="constant", interval=timedelta(seconds=5), maxAttempt=3), 3, None),
    (Retry(type="exponential", interval=timedelta(seconds=2), maxAttempt=9), 3, 8.0),
    (Retry(type="exponential", interval=timedelta(seconds=2), maxInterval=timedelta(seconds=5), maxAttempt=9), 3, 5.0),
    (Retry(type="exponential", interval=timedelta(seconds=1), delayFactor=3, maxAttempt=9), 3, 9.0),
    (Retry(type="constant", interval=timedelta(seconds=30), maxDuration=timedelta(seconds=60)), 1, 30.0),
])
def test_retry_delay(retry, tried, delay):
    assert rules.retry_delay(retry, attempts(*[State.FAILED] * tried), first_at=100.0, now=110.0) == delay


def test_retry_stops_past_max_duration():
    policy = Retry(type="constant", interval=timedelta(seconds=30), maxDuration=timedelta(seconds=60))
    assert rules.retry_delay(policy, attempts(State.FAILED), first_at=100.0, now=140.0) is None


def test_random_retry_stays_within_bounds():
    policy = Retry(type="random", minInterval=timedelta(seconds=2), maxInterval=timedelta(seconds=4), maxAttempt=5)
    delays = {rules.retry_delay(policy, attempts(State.FAILED), 100.0, 100.0, random.Random(seed)) for seed in range(20)}
    assert all(2 <= d <= 4 for d in delays) and len(delays) > 1


@pytest.mark.parametrize("warn, state, tried, expected", [
    (True, State.SUCCESS, 2, State.WARNING),
    (True, State.SUCCESS, 1, State.SUCCESS),
    (False, State.SUCCESS, 2, State.SUCCESS),
    (True, State.FAILED, 2, State.FAILED),
])
def test_warning_on_retry(warn, state, tried, expected):
    policy = Retry(type="constant", interval=timedelta(seconds=1), maxAttempt=3, warningOnRetry=warn)
    assert rules.warning_on_retry(policy, state, attempts(*[State.FAILED] * (tried - 1), state)) == expected


@pytest.mark.parametrize("allow_failure, allow_warning, state, expected", [
    (True, False, State.FAILED, State.WARNING),
    (True, True, State.FAILED, State.SUCCESS),
    (False, True, State.WARNING, State.SUCCESS),
    (True, False, State.KILLED, State.KILLED),
    (False, False, State.FAILED, State.FAILED),
])
def test_allowed(allow_failure, allow_warning, state, expected):
    task = Task(id="t", allowFailure=allow_failure, allowWarning=allow_warning)
    assert rules.allowed(task, state) == expected


def test_lost_attempts_run_again_until_the_streak_reaches_the_cap():
    assert rules.lost_again(attempts(State.LOST))
    assert rules.lost_again(attempts(*[State.LOST] * (rules.MAX_LOST_ATTEMPTS - 1)))
    assert not rules.lost_again(attempts(*[State.LOST] * rules.MAX_LOST_ATTEMPTS))
    # a failure in between breaks the streak: it was not the task killing its worker
    assert rules.lost_again(attempts(State.LOST, State.LOST, State.FAILED, State.LOST))


@pytest.mark.parametrize("state, flowable, running, children, expected", [
    (State.RUNNING, False, True, False, rules.OnKill.CANCEL),
    (State.RUNNING, True, False, True, rules.OnKill.KILL_CHILDREN),
    (State.RUNNING, True, False, False, rules.OnKill.WAIT),
    (State.RETRYING, False, False, False, rules.OnKill.FINISH),
    (State.PAUSED, True, False, False, rules.OnKill.FINISH),
    (State.CREATED, False, False, False, rules.OnKill.FINISH),
])
def test_on_kill(state, flowable, running, children, expected):
    assert rules.on_kill(state, flowable, running, children) is expected


def test_an_ended_run_is_never_killed():
    with pytest.raises(ValueError):
        rules.on_kill(State.SUCCESS, False, False, False)
