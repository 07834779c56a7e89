"""Fixtures for the core plugin's tests.

``FakeRunContext`` is a test double for the run context only: it records logs and gives a
working directory, so a task's ``run()`` can be exercised without the engine (which builds
the real context). Everything the core tasks do not use raises.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tiercel.api import RunContext, Runner


class FakeRunContext(RunContext):
    """A RunContext test double: a logger that keeps its records and a working directory."""

    def __init__(self, working_dir: Path) -> None:
        self.namespace = "company.team"
        self.flow_id = "test"
        self.execution_id = "exec1"
        self.task_run_id = "tr1"
        self.attempt = 1
        self.working_dir = working_dir
        self.records: list[logging.LogRecord] = []
        self.tracked: dict[str, Any] = {}
        self.logger = logging.getLogger(f"tiercel.test.{id(self)}")
        self.logger.setLevel(1)
        self.logger.propagate = False
        records = self.records

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                records.append(record)

        self.logger.addHandler(Keep())

    def lines(self) -> list[tuple[int, str]]:
        return [(r.levelno, r.getMessage()) for r in self.records]

    def render(self, value: Any, /, **extra: Any) -> Any:
        if "{{" in str(value) or "{%" in str(value):
            raise NotImplementedError("no variables here: test expressions through run_flow")
        return value  # literal text renders to itself (core.Log renders its message in run())

    def secret(self, name: str) -> str:
        raise NotImplementedError

    def put_file(self, source: Any, name: str) -> str:
        raise NotImplementedError

    def open_file(self, uri: str) -> Any:
        raise NotImplementedError

    def metric(self, name: str, value: float, type: str = "counter", **tags: str) -> None:
        raise NotImplementedError

    def list_files(self, prefix_uri: str) -> list[str]:
        raise NotImplementedError("not needed by the core tasks")

    def warning(self, message: str) -> None:
        self.logger.warning(message)

    @property
    def cache_dir(self) -> Path:
        return self.working_dir / ".cache"

    def runner(self, spec: dict[str, Any] | None = None) -> Runner:
        raise NotImplementedError

    def track(self, key: str, value: Any) -> None:
        self.tracked[key] = value

    @property
    def leftovers(self) -> list[dict[str, Any]]:
        return []

    @property
    def cancelled(self) -> bool:
        return False

    @property
    def state(self) -> dict[str, Any]:
        return {}


@pytest.fixture
def ctx(tmp_path: Path) -> FakeRunContext:
    work = tmp_path / "work"
    work.mkdir()
    return FakeRunContext(work)
