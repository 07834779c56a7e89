"""Every runnable core example runs to a good end on the real engine (in this process)."""

from __future__ import annotations

import pytest

from tiercel.plugins import load_registry
from tiercel.testing.harness import run_flow

REGISTRY = load_registry(eps=[])
RUNNABLE = [(c.type, i, ex) for c in REGISTRY.components() for i, ex in enumerate(c.cls.examples) if ex.run]
#: Examples that end WARNING on purpose.
WARNING = {"allow_failure_example"}


@pytest.mark.parametrize("type_name,index,example", RUNNABLE, ids=[f"{t}:{i}" for t, i, _ in RUNNABLE])
def test_example_runs(type_name, index, example, tmp_path):
    ex = run_flow(example.flow, home=tmp_path, timeout=30)
    expected = "WARNING" if ex["flowId"] in WARNING else "SUCCESS"
    failed = [(t["taskId"], t["state"]) for t in ex["taskRuns"] if t["state"] not in ("SUCCESS", "WARNING", "SKIPPED")]
    assert ex["state"] == expected, f"{type_name} example `{example.title}` ended {ex['state']}: {failed}"


def outputs(ex, task_id):
    return [t["outputs"] for t in ex["taskRuns"] if t["taskId"] == task_id]


def test_core_semantics_through_the_engine(tmp_path):
    ex = run_flow("""\
id: semantics
namespace: company.team
tasks:
  - id: answer
    type: io.kestra.plugin.core.debug.Return
    format: "{{ 6 * 7 }}"
  - id: values
    type: core.OutputValues
    values: {n: "{{ 6 * 7 }}", s: text}
  - id: not_failing
    type: core.Fail
    condition: "{{ outputs.answer.value == '0' }}"
  - id: tag
    type: core.Labels
    labels: {answer: "{{ outputs.answer.value }}"}
""", home=tmp_path)
    assert ex["state"] == "SUCCESS"
    assert outputs(ex, "answer") == [{"value": "42"}]
    assert outputs(ex, "values") == [{"values": {"n": 42, "s": "text"}}]
    assert ex["labels"].get("answer") == "42"


def test_fail_fails_the_execution_with_its_message(tmp_path):
    ex = run_flow("""\
id: failing
namespace: company.team
tasks:
  - id: stop
    type: core.Fail
    errorMessage: "stopped on purpose"
""", home=tmp_path)
    assert ex["state"] == "FAILED"
