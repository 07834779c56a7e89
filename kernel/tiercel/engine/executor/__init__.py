"""The executor: a pure transition ``apply(flow, execution, events) -> Effects``.

- ``events``: what can happen to an execution (a tagged union matched by ``apply``);
- ``effects``: what a transition asks its caller to do once persisted;
- ``rules``: the named transition rules (retry, allowFailure, warningOnRetry, kill, lost attempts);
- ``machine``: the executor itself; ``run``: the :class:`tiercel.FlowableRun` flowables resolve through.
"""

from tiercel.engine.executor.effects import ArmTimer, Effects, FileWork, Job, StartSubflow
from tiercel.engine.executor.events import (
    Event,
    FilesDone,
    Kill,
    Lost,
    Recover,
    Restart,
    Result,
    Resume,
    Start,
    SubflowEnded,
    Timer,
    as_command,
    command_event,
)
from tiercel.engine.executor.machine import Executor, FlowPlan, coerce_output

__all__ = ["ArmTimer", "Effects", "Event", "Executor", "FileWork", "FilesDone", "FlowPlan", "Job", "Kill", "Lost",
           "Recover", "Restart", "Result", "Resume", "Start", "StartSubflow", "SubflowEnded", "Timer", "as_command",
           "coerce_output", "command_event"]
