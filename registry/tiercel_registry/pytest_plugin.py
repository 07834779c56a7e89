"""Pytest plugin (entry point ``pytest11: tiercel_registry``).

With ``--tiercel-report=PATH`` it writes the outcome of every conformance check that ran
(component type, check, passed/failed/skipped, message) as JSON: that is how
``tiercel registry grade`` reads a plugin's own conformance tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tiercel-registry")
    group.addoption("--tiercel-report", metavar="PATH", default=None,
                    help="write the outcomes of the Tiercel conformance checks as JSON to PATH")
    group.addoption("--tiercel-exit", action="store_true", default=False,
                    help="exit right after the report, even if a plugin left a thread running (the grader uses it)")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--tiercel-report", None)
    if path:
        config.pluginmanager.register(Recorder(Path(path), config.getoption("--tiercel-exit")), "tiercel-registry-report")


def _message(call: Any, report: Any) -> str:
    from tiercel_registry.checks import CheckFailed

    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        return reason.removeprefix("Skipped: ")
    if call.excinfo is None:
        return str(report.longrepr)[-2000:]
    exc = call.excinfo.value
    if isinstance(exc, CheckFailed):
        return str(exc)
    prefix = "fixture error: " if report.when == "setup" else ""
    return f"{prefix}{type(exc).__name__}: {exc}"[:2000]


class Recorder:
    """Collects conformance outcomes during the session and writes them at its end."""

    def __init__(self, path: Path, hard_exit: bool = False) -> None:
        self.path = path
        self.hard_exit = hard_exit
        self.status = 0
        self.results: dict[tuple[str, str], dict[str, str]] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Any:
        outcome = yield
        report = outcome.get_result()
        from tiercel_registry.conformance import Conformance

        cls = getattr(item, "cls", None)
        if cls is None or not issubclass(cls, Conformance) or not hasattr(cls, "component"):
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            status = "passed" if report.passed else "skipped" if report.skipped else "failed"
            check = getattr(item, "originalname", item.name).removeprefix("test_")
            self.results[(cls.component.type, check)] = {
                "type": cls.component.type, "check": check, "status": status,
                "message": "" if report.passed else _message(call, report)}

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        rows = [self.results[k] for k in sorted(self.results)]
        self.path.write_text(json.dumps(rows, indent=2) + "\n")
        self.status = int(exitstatus)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.hard_exit:  # a thread a plugin left running must not hang the grader (its check says so)
            import os
            import sys

            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(self.status)
