"""Retention from a flow: Kestra's core.execution.PurgeExecutions (core.log.PurgeLogs is in tasks.py)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from tiercel.api import Example, FlowableRun, FlowableTask, Status


class PurgeExecutions(FlowableTask):
    """Delete executions that ended before ``endDate`` (and after ``startDate``), with their logs,
    metrics and files in internal storage; executions still running are never touched (Kestra's
    execution.PurgeExecutions, same properties). Outputs: ``executionsCount``, ``logsCount``,
    ``metricsCount``, ``storagesCount``."""

    type: ClassVar[str] = "core.execution.PurgeExecutions"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.execution.PurgeExecutions",
                                          "io.kestra.core.tasks.storages.PurgeExecutions")
    examples: ClassVar[list[Example]] = [
        Example("Keep a month of executions", """\
id: purge_executions_example
namespace: company.team
tasks:
  - id: purge
    type: core.execution.PurgeExecutions
    endDate: "{{ now() | dateAdd(-30, 'DAYS') }}"
    states: [SUCCESS]
triggers:
  - {id: daily, type: core.Schedule, cron: "0 3 * * *"}
"""),
    ]

    endDate: datetime = Field(description="Purge executions that ended up to this date (ISO-8601, usually an expression).")
    startDate: datetime | None = Field(None, description="And from this date only.")
    namespace: str | None = Field(None, description="Only executions of this namespace (and its children).")
    flowId: str | None = Field(None, description="Only executions of this flow.")
    executionId: str | None = Field(None, description="Only this execution.")
    states: list[str] | None = Field(None, description="Only executions that ended in these states (default: all).")
    purgeExecution: bool = Field(True, description="Delete the executions themselves (with their task runs).")
    purgeLog: bool = Field(True, description="Delete their log lines.")
    purgeMetric: bool = Field(True, description="Delete their metrics.")
    purgeStorage: bool = Field(True, description="Delete their files in internal storage.")

    def resolve(self, run: FlowableRun) -> Status:
        from tiercel.core.tasks import _rendered_date

        done = run.files("purge_executions", end=_rendered_date(run, self.endDate),
                         start=_rendered_date(run, self.startDate), namespace=run.render(self.namespace),
                         flow_id=run.render(self.flowId), execution_id=run.render(self.executionId),
                         states=run.render(self.states), purge_execution=self.purgeExecution,
                         purge_log=self.purgeLog, purge_metric=self.purgeMetric, purge_storage=self.purgeStorage)
        if done is None:
            return "RUNNING"
        run.outputs = done
        return "SUCCESS"
