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

    def _repo(self, fn: str, execution: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
        from tiercel.engine.runtime import Runtime

        rt = Runtime(self.path)
        try:
            return getattr(rt.repo, fn)(execution["id"], **kw)
        finally:
            rt.close()

    def logs(self, execution: dict[str, Any], task_id: str | None = None) -> list[dict[str, Any]]:
        return self._repo("logs", execution, task_id=task_id)

    def lines(self, execution: dict[str, Any], task_id: str | None = None) -> list[tuple[str, str]]:
        """(level, message) of each log line, in order."""
        return [(log["level"], log["message"]) for log in self.logs(execution, task_id)]

    def metrics(self, execution: dict[str, Any]) -> list[dict[str, Any]]:
        return self._repo("metrics", execution)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")
