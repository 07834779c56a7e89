"""The standard test suites: subclass one, set ``component``, and pytest runs every check.

```python
from tiercel_registry import TaskConformance
from tiercel_hello.plugin import Hello

class TestHello(TaskConformance):
    component = Hello
```

Knobs: class attributes (``long_run``, ``large_file_size``, ``max_memory``; each may also be
a fixture of the same name) and fixtures to override (``example_inputs``, ``properties``,
``emit``, ``alive``, ``seed``). A check that cannot run without a knob is skipped, saying which one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from tiercel_registry.checks import CHECKS, CheckSkipped, Options, pid_alive, run_check


class Conformance:
    """Checks every component passes: schema, documentation, examples, unknown properties."""

    #: The component class under test (a Task, Trigger, Runner, Storage or SecretProvider subclass).
    component: ClassVar[type]
    #: Properties that make a task run until cancelled, for the timeout and kill checks.
    long_run: ClassVar[dict[str, Any] | None] = None
    #: Size of the file streamed through a storage, and the most memory it may use meanwhile.
    large_file_size: ClassVar[int] = 64 << 20
    max_memory: ClassVar[int] = 16 << 20

    @pytest.fixture
    def example_inputs(self) -> dict[str, Any] | None:
        """Flow inputs for the examples; return a dict (e.g. a service URL) to also run examples marked run=False."""
        return None

    @pytest.fixture
    def properties(self) -> dict[str, Any]:
        """Properties to build a runner or storage with, or to set on the example's trigger."""
        return {}

    @pytest.fixture
    def emit(self) -> Callable[[], Any] | None:
        """A callable making the trigger's source produce one new event (sync or async)."""
        return None

    @pytest.fixture
    def seed(self) -> Callable[[Any, str, str, str], Any] | None:
        """For a secret provider: ``seed(home, namespace, name, value)`` puts a secret where it reads them."""
        return None

    @pytest.fixture
    def alive(self) -> Callable[[int], bool]:
        """Whether a process id still runs (override for runners on another host)."""
        return pid_alive

    @pytest.fixture
    def conformance_options(self, request: pytest.FixtureRequest, example_inputs: Any, properties: Any, emit: Any,
                            alive: Any, seed: Any) -> Options:
        knobs = {name: self._knob(request, name) for name in ("long_run", "large_file_size", "max_memory")}
        return Options(example_inputs=example_inputs, properties=dict(properties or {}), emit=emit, alive=alive,
                       seed=seed, **knobs)

    def _knob(self, request: pytest.FixtureRequest, name: str) -> Any:
        """A class attribute, or a fixture of that name (when the value needs other fixtures)."""
        value = getattr(type(self), name)
        if value is None or isinstance(value, (dict, int)):
            return value
        return request.getfixturevalue(name)

    def check(self, name: str, options: Options) -> None:
        try:
            run_check(name, self.component, options)
        except CheckSkipped as skip:
            pytest.skip(str(skip))

    def test_schema(self, conformance_options: Options) -> None:
        self.check("schema", conformance_options)

    def test_documented(self, conformance_options: Options) -> None:
        self.check("documented", conformance_options)

    def test_examples_validate(self, conformance_options: Options) -> None:
        self.check("examples_validate", conformance_options)

    def test_unknown_property(self, conformance_options: Options) -> None:
        self.check("unknown_property", conformance_options)


class TaskConformance(Conformance):
    """Tasks: plus expressions, secrets, examples run, timeout and kill (with ``long_run``)."""

    def test_expressions(self, conformance_options: Options) -> None:
        self.check("expressions", conformance_options)

    def test_secrets(self, conformance_options: Options) -> None:
        self.check("secrets", conformance_options)

    def test_examples_run(self, conformance_options: Options) -> None:
        self.check("examples_run", conformance_options)

    def test_timeout(self, conformance_options: Options) -> None:
        self.check("timeout", conformance_options)

    def test_kill(self, conformance_options: Options) -> None:
        self.check("kill", conformance_options)


class TriggerConformance(Conformance):
    """Triggers: plus event keys, dedupe, commit after create, realtime stop (with ``emit``)."""

    def test_expressions(self, conformance_options: Options) -> None:
        self.check("expressions", conformance_options)

    def test_event_key(self, conformance_options: Options) -> None:
        self.check("event_key", conformance_options)

    def test_dedupe(self, conformance_options: Options) -> None:
        self.check("dedupe", conformance_options)

    def test_commit_after_create(self, conformance_options: Options) -> None:
        self.check("commit_after_create", conformance_options)

    def test_realtime_stops(self, conformance_options: Options) -> None:
        self.check("realtime_stops", conformance_options)


class RunnerConformance(Conformance):
    """Runners: exit codes, env, files both ways, log streaming, timeout and kill without orphans."""

    def test_exit_code(self, conformance_options: Options) -> None:
        self.check("exit_code", conformance_options)

    def test_env(self, conformance_options: Options) -> None:
        self.check("env", conformance_options)

    def test_files(self, conformance_options: Options) -> None:
        self.check("files", conformance_options)

    def test_log_streaming(self, conformance_options: Options) -> None:
        self.check("log_streaming", conformance_options)

    def test_timeout(self, conformance_options: Options) -> None:
        self.check("timeout", conformance_options)

    def test_kill(self, conformance_options: Options) -> None:
        self.check("kill", conformance_options)


class StorageConformance(Conformance):
    """Storage: round trips, a large file streamed in bounded memory, escaping paths refused."""

    def test_roundtrip(self, conformance_options: Options) -> None:
        self.check("roundtrip", conformance_options)

    def test_large_file(self, conformance_options: Options) -> None:
        self.check("large_file", conformance_options)

    def test_escape_refused(self, conformance_options: Options) -> None:
        self.check("escape_refused", conformance_options)


class SecretProviderConformance(Conformance):
    """Secret providers: values read back exactly, inherited by sub-namespaces, None when unknown
    (with a ``seed`` fixture that puts a secret where the provider reads it)."""

    def test_lookup(self, conformance_options: Options) -> None:
        self.check("lookup", conformance_options)

    def test_inherited(self, conformance_options: Options) -> None:
        self.check("inherited", conformance_options)

    def test_missing(self, conformance_options: Options) -> None:
        self.check("missing", conformance_options)


SUITES: dict[str, type[Conformance]] = {
    "task": TaskConformance, "trigger": TriggerConformance, "runner": RunnerConformance, "storage": StorageConformance,
    "secret": SecretProviderConformance,
}
assert all({f"test_{c}" for c in checks} <= set(dir(SUITES[k])) for k, checks in CHECKS.items())


def conformance_suite(dist: str, settings: dict[str, dict[str, Any]] | None = None) -> dict[str, type]:
    """A test class per component of the installed distribution *dist*, for ``globals().update(...)``.

    *settings* maps a type name to class attributes or fixture values, e.g.
    ``{"core.Sleep": {"long_run": {"duration": "PT1H"}}, "core.Local": {"properties": {...}}}``.
    """
    from tiercel_registry._engine import kind_of
    from tiercel_registry.packaging import components_of

    classes: dict[str, type] = {}
    for cls in components_of(dist):
        attrs: dict[str, Any] = {"component": cls, "__module__": __name__}
        for key, value in (settings or {}).get(cls.type, {}).items():
            if key in ("example_inputs", "properties", "emit", "alive", "seed"):
                attrs[key] = pytest.fixture(name=key)(lambda self, _v=value: _v)
            else:
                attrs[key] = value
        name = "Test_" + re.sub(r"\W", "_", cls.type)
        classes[name] = type(name, (SUITES[kind_of(cls)],), attrs)
    return classes
