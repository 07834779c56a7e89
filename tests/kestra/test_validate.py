"""`tiercel validate` finds what a run would fail on: expressions, references, runners, subflows."""

from __future__ import annotations

import subprocess
import sys

from tiercel.flow.loader import check_paths

FLOW = """\
id: checked
namespace: company.team
inputs:
  - {id: name, type: STRING}
variables: {greeting: hello}
tasks:
  - {id: early, type: core.Log, message: "{{ outputs.late.value }}"}
  - {id: typo, type: core.Log, message: "{{ inputs.nme }} {{ vars.greting }}"}
  - {id: syntax, type: core.Return, format: "{{ 1 + }}"}
  - {id: calls, type: core.Return, format: "{{ nosuchfn(1) }} {{ inputs.name | uppr }} {{ 1 is evn }}"}
  - id: poll
    type: core.WaitFor
    condition: "{{ outputs.count.value | int > 2 and outputs.poll.iterationCount > 0 }}"
    tasks:
      - {id: count, type: core.Return, format: "{{ taskrun.iteration }}"}
  - {id: late, type: core.Return, format: x}
  - id: fine
    type: core.Log
    message: "{% for x in [1] %}{{ x }}{% endfor %} {{ inputs.name is defined ? 1 : 2 }} {{ kv('k') ?? 'x' }}"
  - id: graph
    type: core.Dag
    tasks:
      - task: {id: d1, type: core.Log, message: "{{ outputs.d2.value }}"}
        dependsOn: [d2]
      - task: {id: d2, type: core.Return, format: y}
  - {id: missing, type: core.Log, message: "{{ outputs.nope.value }}"}
  - {id: child, type: core.Subflow, namespace: company.team, flowId: nowhere}
  - {id: sibling, type: core.Subflow, namespace: company.team, flowId: beside}
outputs:
  - {id: o, type: STRING, value: "{{ outputs.late.value }}"}
triggers:
  - id: upstream
    type: core.Flow
    inputs: {name: "{{ outputs.upstream_task.value }}"}
"""


def test_validate_reports_what_a_run_would_fail_on(tmp_path):
    (tmp_path / "checked.yml").write_text(FLOW)
    (tmp_path / "beside.yml").write_text("id: beside\nnamespace: company.team\ntasks:\n  - {id: l, type: core.Log, message: x}\n")
    _, problems = check_paths([tmp_path / "checked.yml"], lint=True)
    found = {(p.line, p.task_id, p.message, p.suggestion, p.severity) for p in problems}
    assert (7, "early", "property `message`: `outputs.late`: task `late` runs after `early`, so it has no outputs yet",
            None, "error") in found
    assert (8, "typo", "property `message`: `inputs.nme`: the flow declares no input `nme`", "did you mean `name`?",
            "error") in found
    assert (8, "typo", "property `message`: `vars.greting`: the flow declares no variable `greting`",
            "did you mean `greeting`?", "error") in found
    assert any(p.task_id == "syntax" and p.property == "tasks[2].format" and "syntax error" in p.message
               for p in problems)
    messages = {p.message: p.suggestion for p in problems if p.task_id == "calls"}
    assert messages["property `format`: unknown function `nosuchfn()`"] is None
    assert messages["property `format`: unknown filter `uppr`"] == "did you mean `upper`?"
    assert messages["property `format`: unknown test `is evn`"] == "did you mean `even`?"
    assert (26, "missing", "property `message`: `outputs.nope`: the flow has no task `nope`", None, "error") in found
    warnings = [p for p in problems if p.severity == "warning"]
    assert [(p.task_id, p.property) for p in warnings] == [("child", "tasks[9].flowId")]
    flagged = {p.task_id for p in problems}
    assert not flagged & {"poll", "count", "fine", "d1", "d2", "late", "sibling", None}  # outputs and triggers too


def test_unknown_task_runner_type(tmp_path):
    (tmp_path / "runner.yml").write_text("""\
id: runner
namespace: company.team
tasks:
  - id: s
    type: core.Log
    message: x
    taskRunner: {type: core.Procss}
""")
    _, problems = check_paths([tmp_path], lint=True)
    # core.Log takes no taskRunner: the schema says so first; a script task would reach the runner check
    assert problems and problems[0].task_id == "s"


def test_cli_exits_zero_on_warnings_only(tmp_path):
    flow = tmp_path / "warn.yml"
    flow.write_text("id: warn\nnamespace: company.team\ntasks:\n"
                    "  - {id: child, type: io.kestra.plugin.core.flow.Subflow, namespace: other, flowId: gone}\n")
    proc = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "validate", str(flow)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning: task `child`: subflow `other.gone` is neither deployed" in proc.stdout


def test_variables_set_at_run_time_are_declared(tmp_path):
    (tmp_path / "setvars.yml").write_text("""\
id: setvars
namespace: company.team
variables: {a: 1}
tasks:
  - {id: set, type: io.kestra.plugin.core.execution.SetVariables, variables: {b: 2}}
  - {id: show, type: core.Log, message: "{{ vars.a }} {{ vars.b }} {{ vars.c }}"}
""")
    _, problems = check_paths([tmp_path], lint=True)
    assert [p.message for p in problems] == ["property `message`: `vars.c`: the flow declares no variable `c`"]
