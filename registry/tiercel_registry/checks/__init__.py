"""The conformance checks: one function per check, shared by the pytest classes and the grader.

A check raises :class:`CheckFailed` with a message for the plugin's author (what is wrong,
and what to do), or :class:`CheckSkipped` when it does not apply or lacks a fixture.
Checks every component passes live in ``common``; the others in the module of their kind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiercel_registry._engine import kind_of

#: The probe secret injected into properties; it must never show up in logs or outputs.
SECRET_NAME = "REGISTRY_PROBE"
SECRET_VALUE = "tcl-probe-s3cr3t-9Xq2ZvB7"
UNKNOWN = "notAProperty"
#: How long a cancelled or timed-out run may take to actually stop.
STOP_GRACE = 5.0


class CheckFailed(AssertionError):
    """The component breaks the contract; the message says how to fix it."""


class CheckSkipped(Exception):
    """The check does not apply, or needs a fixture the conformance class did not give."""


def pid_alive(pid: int) -> bool:
    """Whether process *pid* runs on this host (a zombie awaiting its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X")
    return True


@dataclass
class Options:
    """What a conformance class tells the checks (each is a fixture of the same name)."""

    #: Inputs for the example flows; when given, examples marked ``run=False`` (needing a service) run too.
    example_inputs: dict[str, Any] | None = None
    #: Properties that make a task run until cancelled (enables the timeout and kill checks).
    long_run: dict[str, Any] | None = None
    #: Properties to build the component with (runner, storage) or to set on the example's trigger.
    properties: dict[str, Any] = field(default_factory=dict)
    #: Makes the trigger's source produce one new event (sync or async callable).
    emit: Callable[[], Any] | None = None
    #: Whether a process id is still alive (runners on another host override it).
    alive: Callable[[int], bool] = pid_alive
    #: Puts a secret where a secret provider reads it: ``seed(home, namespace, name, value)``.
    seed: Callable[[Path, str, str, str], Any] | None = None
    #: Size of the streamed file, and the most memory storage may use meanwhile.
    large_file_size: int = 64 << 20
    max_memory: int = 16 << 20


COMMON = ("schema", "documented", "examples_validate", "unknown_property")
CHECKS: dict[str, tuple[str, ...]] = {
    "task": (*COMMON, "expressions", "secrets", "examples_run", "timeout", "kill"),
    "trigger": (*COMMON, "expressions", "event_key", "dedupe", "commit_after_create", "realtime_stops"),
    "runner": (*COMMON, "exit_code", "env", "files", "log_streaming", "timeout", "kill"),
    "storage": (*COMMON, "roundtrip", "large_file", "escape_refused"),
    "secret": (*COMMON, "lookup", "inherited", "missing"),
}
#: What each check verifies, as shown in reports.
DESCRIPTIONS = {
    "schema": "the JSON Schema of its properties is valid",
    "documented": "a docstring on the component and a description on every property",
    "examples_validate": "at least one example flow, and every example validates",
    "unknown_property": "an unknown property is rejected with a message naming it",
    "expressions": "every property accepts an expression and renders to the literal value",
    "secrets": "a secret used in its properties never appears in logs or outputs",
    "examples_run": "its example flows run to SUCCESS",
    "timeout": "`timeout` cuts a long run, and the run stops",
    "kill": "a kill cancels a running run cleanly",
    "event_key": "events carry a deduplication key",
    "dedupe": "the same event delivered twice starts one execution",
    "commit_after_create": "the source position is committed only after the execution exists",
    "realtime_stops": "a realtime listener stops when cancelled",
    "exit_code": "exit codes are reported",
    "env": "environment variables reach the commands",
    "files": "input files reach the commands and output files come back",
    "log_streaming": "output lines stream while the command runs",
    "roundtrip": "put, open, exists, size, list and delete round-trip",
    "large_file": "a large file streams both ways in bounded memory",
    "escape_refused": "paths escaping the storage are refused",
    "lookup": "a stored secret is read back exactly (unicode, quotes, inner newlines)",
    "inherited": "a secret of namespace `a` is seen from `a.b`",
    "missing": "an unknown secret is None, not an error or an empty string",
}


_MODULES = {"task": "tasks", "trigger": "triggers", "runner": "runners", "storage": "storage", "secret": "secrets"}


def checks_for(cls: type) -> tuple[str, ...]:
    return CHECKS[kind_of(cls)]


def run_check(check: str, cls: type, options: Options | None = None) -> None:
    """Run one check on *cls*; raise CheckFailed or CheckSkipped, return when it passes."""
    import importlib

    kind = kind_of(cls)
    if check not in CHECKS[kind]:
        raise CheckSkipped(f"`{check}` does not apply to a {kind}")
    module = importlib.import_module(f"tiercel_registry.checks.{_MODULES[kind]}")
    common = importlib.import_module("tiercel_registry.checks.common")
    fn = getattr(module, f"check_{check}", None) or getattr(common, f"check_{check}")
    fn(cls, options or Options())


def fail(problems: list[str]) -> None:
    if problems:
        raise CheckFailed("\n".join(problems))
