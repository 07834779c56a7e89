"""A plugin outside the kernel that adds a flowable and a trigger kind: proof that both need no kernel change.

``testkit.Repeat`` resolves itself through the public :class:`tiercel.FlowableRun` (a fan-out
with a limit, a progress model, outputs); ``testkit.Every`` is a :class:`tiercel.ScheduleTrigger`
the scheduler fires like ``core.Schedule``, exactly once per date.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC
from typing import Any, ClassVar

from pydantic import Field

from tiercel import FlowableRun, FlowableTask, ScheduleTrigger, Task, hookimpl

TIERCEL_API = ">=1.0,<2"


class Repeat(FlowableTask):
    """Run ``tasks`` ``times`` times, at most ``concurrent`` repetitions at once."""

    type: ClassVar[str] = "testkit.Repeat"
    times: int = Field(description="How many repetitions.")
    concurrent: int = Field(1, ge=0, description="Repetitions at once (0: all).")
    tasks: list[Task] = Field(min_length=1, description="Tasks of one repetition.")

    class Progress(FlowableTask.Progress):
        times: int | None = None  # rendered once

    def resolve(self, run: FlowableRun) -> str:
        if run.progress.times is None:
            run.progress.times = int(run.render(self.times))
        times = run.progress.times
        status = run.fan_out(times, lambda i: run.sequence(self.tasks, key=i, value=f"round-{i}"),
                             limit=self.concurrent, index_of=lambda child: child.key)
        done = sum(1 for i in range(times) if (child := run.child(self.tasks[-1].id, i)) and child.state == "SUCCESS")
        run.outputs = {"done": done}
        return status


class Every(ScheduleTrigger):
    """Fire every ``seconds`` seconds (aligned on the epoch)."""

    type: ClassVar[str] = "testkit.Every"
    seconds: int = Field(ge=1, description="The period in seconds.")

    def next_fire(self, after: float) -> float:
        return (math.floor(after / self.seconds) + 1) * self.seconds

    def previous_fire(self, before: float) -> float:
        return (math.ceil(before / self.seconds) - 1) * self.seconds

    def zone(self) -> Any:
        return UTC

    def signature(self) -> str:
        return f"every {self.seconds}"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    register(Repeat)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    register(Every)
