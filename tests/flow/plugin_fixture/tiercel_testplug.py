"""Small components for the flow tests: each shape of child-task field, a trigger, an alias."""

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from tiercel import Example, FlowableTask, PollingTrigger, Task, hookimpl

TIERCEL_API = ">=1.0,<2"


class Log(Task):
    """Write a message to the logs."""

    type = "test.Log"
    aliases = ("io.test.log.Log",)
    examples = [Example("hello", "id: ex\nnamespace: test\ntasks:\n  - {id: a, type: test.Log, message: hi}\n")]
    message: str = Field(description="What to log.")
    level: Literal["DEBUG", "INFO", "WARN", "ERROR"] = Field("INFO", description="Log level.")


class Nap(Task):
    """Sleep for a while."""

    type = "test.Nap"
    duration: timedelta = Field(description="How long.")
    color: str | None = Field(None, description="Colour of the nap.")
    count: int = Field(1, description="How many naps.")
    options: dict[str, Any] = Field(default_factory=dict, description="Free options.")


class Sequential(FlowableTask):
    """Run tasks in order."""

    type = "test.Sequential"
    tasks: list[Task] = Field(min_length=1, description="Tasks.")
    errors: list[Task] = Field(default_factory=list, description="Error handlers.")


class If(FlowableTask):
    """Branch on a condition."""

    type = "test.If"
    condition: str | bool = Field(description="Condition.")
    then: list[Task] = Field(description="When true.")
    else_: list[Task] | None = Field(None, alias="else", description="When false.")


class Switch(FlowableTask):
    """Branch on a value."""

    type = "test.Switch"
    value: str = Field(description="Value.")
    cases: dict[str, list[Task]] = Field(default_factory=dict, description="Tasks per value.")
    defaults: list[Task] | None = Field(None, description="When no case matches.")


class Wrap(FlowableTask):
    """Hold one task."""

    type = "test.Wrap"
    task: Task | None = Field(None, description="The task.")


class DagItem(BaseModel):
    task: Task = Field(description="The task.")
    dependsOn: list[str] = Field(default_factory=list, description="Upstream task ids.")


class Dag(FlowableTask):
    """Run tasks by dependencies."""

    type = "test.Dag"
    tasks: list[DagItem] = Field(description="Tasks with dependencies.")


class Subflow(FlowableTask):
    """Start another flow."""

    type = "test.Subflow"
    namespace: str = Field(description="Namespace of the flow.")
    flowId: str = Field(description="Id of the flow.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Inputs.")


class Tick(PollingTrigger):
    """Fires on a cron."""

    type = "test.Tick"
    cron: str = Field(description="Cron expression.")


@hookimpl
def register_tasks(register):
    for cls in (Log, Nap, Sequential, If, Switch, Wrap, Dag, Subflow):
        register(cls)


@hookimpl
def register_triggers(register):
    register(Tick)
