"""The execution a ``*Execution`` task reports on, and the default message about it.

In an alert flow (a ``core.Flow`` trigger) that is the upstream execution from ``trigger.*``;
in an ``errors`` or ``finally`` branch it is the current execution.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tiercel import RunContext

ICONS = {"SUCCESS": "✅", "WARNING": "⚠️", "FAILED": "❌", "KILLED": "⛔"}


class ExecutionMessage(BaseModel):
    """Properties shared by the tasks that report on an execution."""

    executionId: str | None = Field(
        None,
        description="The execution to report on: by default the one that triggered this flow "
        "(`trigger.executionId`), else the current one.",
    )
    customMessage: str | None = Field(None, description="A line added under the summary.")
    customFields: dict[str, Any] | None = Field(None, description="Extra `name: value` lines added to the message.")
    serverUrl: str | None = Field(
        None,
        description="Address of the Tiercel server (`http://host:8080`); the message then links to the "
        "execution there.",
    )


def describe(ctx: RunContext, task: ExecutionMessage) -> dict[str, Any]:
    """Namespace, flow, id, state, failed tasks and link of the reported execution."""
    seen = ctx.render({"trigger": "{{ trigger }}", "execution": "{{ execution }}", "flow": "{{ flow }}"})
    trigger = seen["trigger"] if isinstance(seen["trigger"], dict) else {}
    upstream = bool(trigger.get("executionId"))
    source = trigger if upstream else {}
    info = {
        "namespace": source.get("namespace") or seen["flow"].get("namespace"),
        "flowId": source.get("flowId") or seen["flow"].get("id"),
        "executionId": task.executionId or source.get("executionId") or seen["execution"].get("id"),
        "state": source.get("state") or seen["execution"].get("state"),
        "failedTasks": list(source.get("failedTasks") or []),
    }
    info["link"] = f"{task.serverUrl.rstrip('/')}/api/v1/executions/{info['executionId']}" if task.serverUrl else None
    return info


def lines(ctx: RunContext, task: ExecutionMessage) -> tuple[str, list[str]]:
    """The title and the detail lines of the message."""
    info = describe(ctx, task)
    title = f"{ICONS.get(info['state'], 'ℹ️')} {info['namespace']}.{info['flowId']} ended {info['state']}"
    detail = [f"Execution: {info['executionId']}"]
    if info["failedTasks"]:
        detail.append("Failed tasks: " + ", ".join(info["failedTasks"]))
    if task.customMessage:
        detail.append(task.customMessage)
    detail += [f"{k}: {v}" for k, v in (task.customFields or {}).items()]
    if info["link"]:
        detail.append(f"Link: {info['link']}")
    return title, detail


def text(ctx: RunContext, task: ExecutionMessage) -> str:
    title, detail = lines(ctx, task)
    return "\n".join([title, *detail])
