"""Kestra flows that ended wrong or crashed: each one run for real and checked the way Kestra ends it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tiercel.testing import execution_logs
from tiercel.testing.harness import run_flow, task_run


def run(tmp_path, body: str, **kw):
    return run_flow("id: compat\nnamespace: company.team\n" + body, home=tmp_path / "home", **kw)


def test_switch_without_match_nor_defaults_fails(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: route
    type: io.kestra.plugin.core.flow.Switch
    value: staging
    cases:
      prod:
        - {id: deploy, type: io.kestra.plugin.core.log.Log, message: prod}
""")
    assert ex["state"] == "FAILED"
    assert "no case matches the value 'staging'" in task_run(ex, "route")["error"]


def test_foreach_with_a_null_value_fails_clearly(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", null]
    tasks:
      - {id: show, type: io.kestra.plugin.core.log.Log, message: "{{ taskrun.value }}"}
""")
    assert ex["state"] == "FAILED"
    assert "`values` holds a null at position 1" in task_run(ex, "each")["error"]


def test_log_of_a_map_or_list_expression_is_compact_json(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: map, type: io.kestra.plugin.core.log.Log, message: "{{ {'a': 1, 'ok': true} }}"}
  - {id: list, type: io.kestra.plugin.core.log.Log, message: ["{{ [1, 2] }}", "n={{ 3 }}"]}
  - {id: ret, type: io.kestra.plugin.core.debug.Return, format: "{{ {'a': [1, 2]} }}"}
""")
    assert ex["state"] == "SUCCESS"
    messages = [line["message"] for line in execution_logs(tmp_path / "home", ex["id"])]
    assert '{"a":1,"ok":true}' in messages and "[1,2]" in messages and "n=3" in messages
    assert task_run(ex, "ret")["outputs"]["value"] == '{"a":[1,2]}'


def test_pause_delay_and_foreachitem_rows_take_expressions(tmp_path):
    ex = run(tmp_path, """
inputs:
  - {id: wait, type: STRING, defaults: PT0.05S}
tasks:
  - {id: pause, type: io.kestra.plugin.core.flow.Pause, delay: "{{ inputs.wait }}"}
  - {id: after, type: io.kestra.plugin.core.log.Log, message: resumed}
""")
    assert ex["state"] == "SUCCESS"
    assert task_run(ex, "after")["state"] == "SUCCESS"


def test_bad_expression_in_pause_delay_names_the_property(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: pause, type: io.kestra.plugin.core.flow.Pause, delay: "{{ 'soon' }}"}
""")
    assert ex["state"] == "FAILED"
    assert "property `delay`" in task_run(ex, "pause")["error"]


def test_labels_list_form_with_expressions_and_booleans(tmp_path):
    ex = run(tmp_path, """
labels: {flag: true}
inputs:
  - {id: go, type: BOOLEAN, defaults: true}
tasks:
  - id: tag
    type: io.kestra.plugin.core.execution.Labels
    labels:
      - {key: approved, value: "{{ inputs.go }}"}
      - {key: literal, value: false}
      - {key: data, value: "{{ {'n': 1} }}"}
""")
    assert ex["state"] == "SUCCESS"
    assert ex["labels"] == {"flag": "true", "approved": "true", "literal": "false", "data": '{"n":1}',
                           "system.correlationId": ex["id"]}


def test_resume_of_a_missing_execution_fails(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: resume, type: io.kestra.plugin.core.execution.Resume, executionId: does-not-exist}
""")
    assert ex["state"] == "FAILED"
    assert "execution `does-not-exist` does not exist" in task_run(ex, "resume")["error"]


def test_waitfor_failure_carries_an_error_and_children_see_iteration_count(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: poll
    type: io.kestra.plugin.core.flow.WaitFor
    condition: "{{ outputs.poll.iterationCount >= 2 }}"
    checkFrequency: {interval: PT0.01S, maxIterations: 5}
    tasks:
      - {id: seen, type: io.kestra.plugin.core.debug.Return, format: "{{ outputs.poll.iterationCount }}"}
  - id: broken
    type: io.kestra.plugin.core.flow.WaitFor
    condition: "{{ true }}"
    tasks:
      - {id: boom, type: io.kestra.plugin.core.execution.Fail}
""")
    assert task_run(ex, "poll")["outputs"] == {"iterationCount": 2}
    assert [tr["outputs"]["value"] for tr in ex["taskRuns"] if tr["taskId"] == "seen"] == ["1", "2"]
    assert ex["state"] == "FAILED"
    assert task_run(ex, "broken")["error"] == "iteration 1 ended FAILED"


def test_flow_output_string_of_a_map_is_compact_json(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: v, type: io.kestra.plugin.core.output.OutputValues, values: {m: {a: 1}}}
outputs:
  - {id: text, type: STRING, value: "{{ outputs.v['values'].m }}"}
""")
    assert ex["outputs"] == {"text": '{"a":1}'}


@pytest.mark.parametrize("typed, hint", [
    ("io.kestra.plugin.core.execution.Amount", None),  # only close class names are suggested (not Concat)
    ("io.kestra.plugin.core.log.Fetchh", "core.log.Fetch"),
    ("core.Logg", "core.Log"),
    ("io.kestra.plugin.core.flow.Swtich", "core.Switch"),
])
def test_did_you_mean_only_when_close_and_cached(typed, hint):
    from tiercel.plugins import get_registry

    registry = get_registry()
    assert registry.suggest("task", typed) == hint
    assert (("task", typed) in registry._suggestions)


def test_warnings_are_one_line_without_source(tmp_path):
    flow = tmp_path / "short_key.yml"
    flow.write_text("id: t\nnamespace: a\ntasks:\n  - {id: l, type: core.Log, message: hi}\n"
                    "triggers:\n  - {id: w, type: core.Webhook, key: abc}\n")
    proc = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "validate", str(flow)], capture_output=True,
                          text=True, timeout=60)
    assert "warning: webhook key `abc` is short" in proc.stderr
    assert "validate_python" not in proc.stderr and ".py:" not in proc.stderr


def test_kestra_flow_forms_and_system_labels(tmp_path):
    (tmp_path / "child.yml").write_text("id: child\nnamespace: company.team\ntasks:\n"
                                        "  - {id: l, type: core.Log, message: child}\n")
    with pytest.warns(UserWarning, match="`extend:` block"):
        ex = run_flow("""
id: forms
namespace: company.team
extend:
  title: A blueprint
  tags: [Getting Started]
labels:
  system.readOnly: true
inputs:
  - {name: flag, type: BOOL, defaults: true}
tasks:
  - {id: show, type: io.kestra.plugin.core.debug.Return, format: "{{ inputs.flag }}"}
  - {id: sub, type: io.kestra.plugin.core.flow.Subflow, namespace: company.team, flowId: child}
""", home=tmp_path / "home", flow_dirs=[tmp_path])
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "show")["outputs"]["value"] == "true"
    assert ex["labels"] == {"system.readOnly": "true", "system.correlationId": ex["id"]}
    child_id = task_run(ex, "sub")["outputs"]["executionId"]
    from tiercel.testing.harness import tiercel

    child = tiercel("executions", "show", child_id, "--json", home=tmp_path / "home")
    assert f'"system.correlationId": "{ex["id"]}"' in child.stdout


def test_the_kestra_page_example_runs(tmp_path):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "user" / "kestra.md").read_text()
    flow = next(f for f in re.findall(r"```yaml\n(.*?)```", doc, re.S) if f.startswith("id: kestra_style"))
    ex = run_flow(flow, home=tmp_path / "home")
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "big")["outputs"]["value"] == "[2]"
    assert [tr["outputs"]["value"] for tr in ex["taskRuns"] if tr["taskId"] == "label"] == ["small", "big"]
    assert task_run(ex, "quiet")["state"] == "SUCCESS"
