"""Helpers for the script tasks' tests: run a flow in a fresh home, read its logs and metrics back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tiercel.testing.harness import run_flow


class Home:
    """A Tiercel home for one test: runs flows in-process and reads what they stored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, source: str, **kw: Any) -> dict[str, Any]:
        return run_flow(source, home=self.path, **kw)

    def logs(self, execution: dict[str, Any], task_id: str | None = None) -> list[dict[str, Any]]:
        from tiercel.testing import execution_logs

        return execution_logs(self.path, execution["id"], task_id=task_id)

    def lines(self, execution: dict[str, Any], task_id: str | None = None) -> list[tuple[str, str]]:
        """(level, message) of each log line, in order."""
        return [(log["level"], log["message"]) for log in self.logs(execution, task_id)]

    def metrics(self, execution: dict[str, Any]) -> list[dict[str, Any]]:
        from tiercel.testing import execution_metrics

        return execution_metrics(self.path, execution["id"])


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")
