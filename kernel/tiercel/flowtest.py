"""Flow unit tests: ``*.test.yaml`` files beside the flows, run by ``tiercel test`` and by pytest.

A test file names a flow and holds test cases (Kestra's shape)::

    flow: hello.yaml                 # or namespace + flowId of a flow found beside the test
    testCases:
      - id: greets_the_world
        fixtures:
          inputs: {name: world}
          trigger: {body: {id: 7}}   # what `trigger.*` reads
          tasks:                     # replaced without running: outputs and end state
            - {id: fetch, outputs: {rows: 3}, state: SUCCESS}
        assertions:
          - {value: "{{ execution.state }}", equalTo: SUCCESS}
          - {value: "{{ outputs.say.value }}", startsWith: Hello}

Each case runs in a fresh home, so stores and files never leak between cases. Assertions are
rendered after the execution ends with ``execution``, ``outputs.<taskId>``,
``tasks.<taskId>.state|outputs|error``, ``inputs``, ``labels`` and ``trigger``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tiercel.api import Example, RunContext, Task, TaskError

OPERATORS = (
    "equalTo",
    "notEqualTo",
    "contains",
    "startsWith",
    "endsWith",
    "greaterThan",
    "greaterThanOrEqualTo",
    "lessThan",
    "lessThanOrEqualTo",
    "in",
    "notIn",
    "isNull",
    "isNotNull",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TaskFixture(_Model):
    id: str = Field(description="Id of the task replaced.")
    description: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict, description="Its outputs.")
    state: Literal["SUCCESS", "WARNING", "FAILED"] = Field("SUCCESS", description="The state it ends in.")


class Fixtures(_Model):
    inputs: dict[str, Any] = Field(default_factory=dict)
    trigger: dict[str, Any] | None = None
    tasks: list[TaskFixture] = Field(default_factory=list)


class Assertion(_Model):
    value: Any = Field(description="An expression rendered after the execution ends.")
    description: str | None = None
    errorMessage: str | None = None
    equalTo: Any = None
    notEqualTo: Any = None
    contains: Any = None
    startsWith: str | None = None
    endsWith: str | None = None
    greaterThan: float | None = None
    greaterThanOrEqualTo: float | None = None
    lessThan: float | None = None
    lessThanOrEqualTo: float | None = None
    in_: list[Any] | None = Field(None, alias="in")
    notIn: list[Any] | None = None
    isNull: bool | None = None
    isNotNull: bool | None = None


class TestCase(_Model):
    __test__ = False  # not a pytest class

    id: str
    description: str | None = None
    disabled: bool = False
    fixtures: Fixtures = Field(default_factory=Fixtures)
    assertions: list[Assertion] = Field(min_length=1)


class TestFile(_Model):
    __test__ = False

    id: str | None = None
    flow: str | None = Field(None, description="Path of the flow file, relative to the test file.")
    namespace: str | None = None
    flowId: str | None = None
    testCases: list[TestCase] = Field(min_length=1)


class Fixture(Task):
    """A task replaced by a test fixture: it ends in the given state with the given outputs, doing nothing."""

    type: ClassVar[str] = "test.Fixture"
    examples: ClassVar[list[Example]] = []

    outputs: dict[str, Any] = Field(default_factory=dict, description="Outputs to return.")
    state: str = Field("SUCCESS", description="SUCCESS, WARNING or FAILED.")

    static_fields: ClassVar[frozenset[str]] = frozenset({"id", "runIf", "outputs"})

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if self.state == "FAILED":
            raise TaskError(f"task `{self.id}` failed (test fixture)")
        if self.state == "WARNING":
            ctx.warning(f"task `{self.id}` ended WARNING (test fixture)")
        return self.outputs


# --- results ---------------------------------------------------------------------------------


@dataclass
class CaseResult:
    file: Path
    case: str
    outcome: Literal["passed", "failed", "error", "skipped"]
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.file}::{self.case}"


class TestFileError(Exception):
    """A test file that cannot run: invalid, or its flow is missing or invalid."""

    __test__ = False


@dataclass
class LoadedFile:
    path: Path
    spec: TestFile
    flow_text: str
    flow_path: Path
    lines: dict[tuple[int, int], int]  # (case index, assertion index) -> line
    task_ids: list[str]  # every task of the flow: `tasks.<id>` is null for one that never ran


def load_test_file(path: Path) -> LoadedFile:
    from tiercel.flow import FlowValidationError, load_flow_file
    from tiercel.flow.yamlpos import YamlError, load_yaml

    try:
        data, positions = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, YamlError) as exc:
        raise TestFileError(f"{path}: {getattr(exc, 'message', exc)}") from None
    try:
        spec = TestFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple("in" if p == "in_" else p for p in err["loc"])
            where = positions.find(loc) or positions.find(loc[:-1])
            problems.append(f"{path}{f':{where[0]}' if where else ''}: `{'.'.join(map(str, loc))}`: {err['msg']}")
        raise TestFileError("\n".join(problems)) from None
    flow_path = _find_flow(path, spec)
    try:
        flow = load_flow_file(flow_path)
    except FlowValidationError as exc:
        raise TestFileError(f"{path}: its flow does not validate:\n{exc}") from None
    known = {task.id for task, _, _ in flow.walk()}
    lines = {}
    for i, case in enumerate(spec.testCases):
        for fixture in case.fixtures.tasks:
            if fixture.id not in known:
                raise TestFileError(
                    f"{path}: test case `{case.id}`: fixture task `{fixture.id}` is not a task of "
                    f"flow {flow.namespace}.{flow.id}"
                )
        for j, assertion in enumerate(case.assertions):
            if not any(assertion.model_fields_set & {k, "in_"} for k in OPERATORS):
                raise TestFileError(
                    f"{path}: test case `{case.id}`, assertion {j + 1}: give an operator ({', '.join(OPERATORS)})"
                )
            where = positions.find(("testCases", i, "assertions", j))
            lines[(i, j)] = where[0] if where else 0
    return LoadedFile(path, spec, flow_path.read_text(encoding="utf-8"), flow_path, lines, sorted(known))


def _find_flow(path: Path, spec: TestFile) -> Path:
    from tiercel.flow import FlowValidationError, load_flow_file
    from tiercel.flow.loader import collect_files

    if spec.flow:
        flow_path = (path.parent / spec.flow).resolve()
        if not flow_path.is_file():
            raise TestFileError(f"{path}: flow file {spec.flow} not found (relative to the test file)")
        return flow_path
    if not (spec.namespace and spec.flowId):
        raise TestFileError(f"{path}: name the flow with `flow: file.yaml`, or `namespace` and `flowId`")
    for candidate in collect_files([path.parent])[0]:
        try:
            flow = load_flow_file(candidate)
        except FlowValidationError:
            continue
        if (flow.namespace, flow.id) == (spec.namespace, spec.flowId):
            return candidate
    raise TestFileError(f"{path}: no flow {spec.namespace}.{spec.flowId} in {path.parent}")


# --- running ----------------------------------------------------------------------------------


def _with_fixtures(text: str, fixtures: list[TaskFixture]) -> str:
    data = yaml.safe_load(text)
    wanted = {f.id: f for f in fixtures}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if isinstance(node.get("id"), str) and "type" in node and node["id"] in wanted:
                f = wanted[node["id"]]
                return {"id": f.id, "type": Fixture.type, "outputs": copy.deepcopy(f.outputs), "state": f.state}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return yaml.safe_dump(walk(data), sort_keys=False, allow_unicode=True)


def run_case(loaded: LoadedFile, index: int, registry: Any = None) -> CaseResult:
    from tiercel.engine.runtime import Runtime
    from tiercel.expr import Renderer
    from tiercel.flow import load_flow
    from tiercel.flow.inputs import resolve_inputs
    from tiercel.plugins import get_registry

    case = loaded.spec.testCases[index]
    started = time.monotonic()
    if case.disabled:
        return CaseResult(loaded.path, case.id, "skipped")
    registry = (registry or get_registry()).with_component(Fixture, "tiercel-flow-tests")
    home = Path(tempfile.mkdtemp(prefix="tiercel-flowtest-"))
    try:
        flow = load_flow(
            _with_fixtures(loaded.flow_text, case.fixtures.tasks), str(loaded.flow_path), registry=registry
        )
        runtime = Runtime(home, registry=registry, flow_dirs=[loaded.flow_path.parent])
        try:
            trigger = (
                {"id": "test", "type": "test", "variables": case.fixtures.trigger}
                if case.fixtures.trigger is not None
                else None
            )
            ex = runtime.new_execution(flow, resolve_inputs(flow, case.fixtures.inputs), trigger=trigger)

            async def main() -> None:
                stop = asyncio.Event()
                loop = asyncio.create_task(runtime.serve(stop, poll_interval=0.1))
                try:
                    runtime.submit(ex)
                    await asyncio.wait_for(runtime.wait(ex.id), 120)
                finally:
                    stop.set()
                    runtime.wake()
                    await loop

            asyncio.run(main())
            execution = runtime.stores.executions.json(ex.id)
        finally:
            runtime.close()
    except Exception as exc:
        return CaseResult(
            loaded.path,
            case.id,
            "error",
            time.monotonic() - started,
            [f"{loaded.path}: test case `{case.id}` could not run: {type(exc).__name__}: {exc}"],
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    failures = check(loaded, index, execution, Renderer(registry=registry))
    return CaseResult(loaded.path, case.id, "failed" if failures else "passed", time.monotonic() - started, failures)


def context(execution: dict[str, Any], task_ids: list[str]) -> dict[str, Any]:
    """What assertions read: the execution, and each task's state and outputs by id (the last run's;
    null for a task that never ran)."""
    ran = {
        tr["taskId"]: {"state": tr["state"], "outputs": tr.get("outputs") or {}, "error": tr.get("error")}
        for tr in execution.get("taskRuns", [])
    }
    tasks: dict[str, Any] = {**dict.fromkeys(task_ids), **ran}
    return {
        "execution": execution,
        "outputs": {k: v["outputs"] for k, v in ran.items()},
        "tasks": tasks,
        "inputs": execution.get("inputs") or {},
        "labels": execution.get("labels") or {},
        "trigger": (execution.get("trigger") or {}).get("variables") or {},
        "flow": {"id": execution.get("flowId"), "namespace": execution.get("namespace")},
    }


def check(loaded: LoadedFile, index: int, execution: dict[str, Any], renderer: Any) -> list[str]:
    variables = context(execution, loaded.task_ids)
    failures = []
    for j, assertion in enumerate(loaded.spec.testCases[index].assertions):
        where = f"{loaded.path}:{loaded.lines.get((index, j), 0)}"
        try:
            got = renderer.render(assertion.value, variables)
        except Exception as exc:
            failures.append(f"{where}: `{assertion.value}` cannot be rendered: {exc}")
            continue
        for op in OPERATORS:
            attr = "in_" if op == "in" else op
            if attr not in assertion.model_fields_set:
                continue
            expected = getattr(assertion, attr)
            if not _holds(op, got, expected):
                note = f" ({assertion.errorMessage})" if assertion.errorMessage else ""
                failures.append(
                    f"{where}: {assertion.value} {op}{note}\n  expected: {_show(expected)}\n  got:      {_show(got)}"
                )
    return failures


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "null" if value is None else str(value)


def _same(a: Any, b: Any) -> bool:
    return a == b or _text(a) == _text(b)


def _number(value: Any) -> float | None:
    try:
        return float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _holds(op: str, got: Any, expected: Any) -> bool:
    if op == "equalTo":
        return _same(got, expected)
    if op == "notEqualTo":
        return not _same(got, expected)
    if op == "isNull":
        return (got is None) == bool(expected)
    if op == "isNotNull":
        return (got is not None) == bool(expected)
    if op in ("in", "notIn"):
        found = any(_same(got, e) for e in expected or [])
        return found if op == "in" else not found
    if op == "contains":
        if isinstance(got, (list, dict)):
            return any(_same(item, expected) for item in got)
        return _text(expected) in _text(got)
    if op == "startsWith":
        return _text(got).startswith(str(expected))
    if op == "endsWith":
        return _text(got).endswith(str(expected))
    number = _number(got)
    if number is None:
        return False
    return {
        "greaterThan": number > expected,
        "greaterThanOrEqualTo": number >= expected,
        "lessThan": number < expected,
        "lessThanOrEqualTo": number <= expected,
    }[op]


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def collect(paths: list[Path]) -> list[Path]:
    """The ``*.test.yaml`` files named by *paths* (folders searched recursively, hidden ones skipped)."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(
                f
                for f in p.rglob("*.test.y*ml")
                if f.is_file()
                and f.name.endswith((".test.yaml", ".test.yml"))
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
        else:
            found.append(p)
    return found


def junit_xml(results: list[CaseResult], seconds: float) -> str:
    import xml.etree.ElementTree as ET

    suite = ET.Element(
        "testsuite",
        name="tiercel",
        tests=str(len(results)),
        failures=str(sum(r.outcome == "failed" for r in results)),
        errors=str(sum(r.outcome == "error" for r in results)),
        skipped=str(sum(r.outcome == "skipped" for r in results)),
        time=f"{seconds:.3f}",
    )
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=str(r.file), name=r.case, time=f"{r.seconds:.3f}")
        if r.outcome in ("failed", "error"):
            text = "\n".join(r.failures)
            ET.SubElement(
                case,
                "failure" if r.outcome == "failed" else "error",
                message=text.splitlines()[0] if text else r.outcome,
            ).text = text
        elif r.outcome == "skipped":
            ET.SubElement(case, "skipped")
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


# --- pytest ------------------------------------------------------------------------------------


def pytest_file(parent: Any, file_path: Path) -> Any:
    """A pytest collector for one ``*.test.yaml`` file: one item per test case."""
    import pytest

    class FlowTestItem(pytest.Item):
        def __init__(self, *, loaded: LoadedFile, index: int, **kw: Any) -> None:
            super().__init__(**kw)
            self.loaded, self.index = loaded, index

        def runtest(self) -> None:
            result = run_case(self.loaded, self.index)
            if result.outcome == "skipped":
                pytest.skip("disabled")
            if result.failures:
                raise FlowTestFailed("\n".join(result.failures))

        def repr_failure(self, excinfo: Any, style: Any = None) -> str:
            if isinstance(excinfo.value, (FlowTestFailed, TestFileError)):
                return str(excinfo.value)
            return str(super().repr_failure(excinfo))

        def reportinfo(self) -> tuple[Path, int, str]:
            return self.path, 0, f"{self.path.name}::{self.name}"

    class FlowTestFile(pytest.File):
        def collect(self) -> Any:
            loaded = load_test_file(self.path)
            for i, case in enumerate(loaded.spec.testCases):
                yield FlowTestItem.from_parent(self, name=case.id, loaded=loaded, index=i)

    return FlowTestFile.from_parent(parent, path=file_path)


class FlowTestFailed(AssertionError):
    """A flow test case whose assertions did not hold (the message shows expected and got)."""
