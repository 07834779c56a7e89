"""Pebble's syntax and Kestra's functions and variables, as Kestra flows write them."""

from __future__ import annotations

import json

import pytest

from tiercel.expr import ExpressionError, Renderer
from tiercel.testing import write_file
from tiercel.testing.harness import run_flow, task_run

VARS = {"inputs": {"n": 1, "s": "hello", "items": [1, 2], "none": None, "m": {"k": "v"}}}


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


@pytest.mark.parametrize("source, expected", [
    ("{{ inputs.n == 1 ? 'one' : 'other' }}", "one"),
    ("{{ inputs.n > 5 ? 'big' : inputs.n > 0 ? 'small' : 'none' }}", "small"),
    ("{{ inputs.missing is defined ? inputs.missing : 'absent' }}", "absent"),
    ("{{ inputs.n equals 1 }}", True),
    ("{{ not (inputs.s equals 'bye') }}", True),
    ("{{ inputs.items contains 2 }}", True),
    ("{{ inputs.s contains 'ell' }}", True),
    ("{{ inputs.m contains 'k' }}", True),
    ("{{ inputs.none is null }}", True),
    ("{{ inputs.s is not null and inputs.nope is not defined }}", True),
    ("{{ inputs.s ~ '-' ~ inputs.n }}", "hello-1"),
    ("{{ uuid() | length }}", 36),
    ("{{ randomInt(3, 4) }}", 3),
    ("{{ {'a': [{'b': 1}, {'b': 5}]} | jq('[.a[] | select(.b > 2) | .b]') | first }}", [5]),
    ("{{ inputs.items | jq('map(. * 10) | add') | first }}", 30),
])
def test_pebble_syntax(renderer, source, expected):
    assert renderer.render(source, VARS) == expected


def test_ternary_in_a_bare_condition_and_a_set(renderer):
    assert renderer.evaluate("inputs.n == 1 ? true : false", VARS) is True
    assert renderer.render("{% set x = inputs.n > 0 ? 'pos' : 'neg' %}{{ x }}", VARS) == "pos"


def test_bad_ternary_is_a_syntax_error(renderer):
    with pytest.raises(ExpressionError, match="expected token ':'"):
        renderer.render("{{ inputs.n ? 1 }}", VARS)


def test_functions_and_variables_in_a_flow(tmp_path, monkeypatch):
    monkeypatch.setenv("ENV_REGION", "eu-west")
    monkeypatch.setenv("KESTRA_STAGE", "prod")
    home = tmp_path / "home"
    home.mkdir()
    (home / "globals.yaml").write_text("team: data\n")
    ex = run_flow("""
id: functions
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [a, b]
    tasks:
      - {id: inner, type: io.kestra.plugin.core.debug.Return, format: "v-{{ taskrun.value }}"}
      - {id: current, type: io.kestra.plugin.core.debug.Return, format: "{{ currentEachOutput(outputs.inner).value }}"}
  - id: vars
    type: io.kestra.plugin.core.debug.Return
    format: "{{ envs.region }} {{ envs.stage }} {{ globals.team }} {{ taskrun.attemptsCount }} {{ kv('nope') ?? 'fallback' }}"
  - {id: context, type: io.kestra.plugin.core.debug.Return, format: "{{ printContext() }}"}
  - id: workdir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - {id: in_workdir, type: io.kestra.plugin.core.debug.Return, format: "{{ workerTaskrun.id }}"}
  - {id: boom, type: io.kestra.plugin.core.execution.Fail, errorMessage: disk full}
errors:
  - {id: alert, type: io.kestra.plugin.core.debug.Return, format: "{{ errorLogs()[0].message }}"}
""", home=home)
    assert ex["state"] == "FAILED"
    assert [tr["outputs"]["value"] for tr in ex["taskRuns"] if tr["taskId"] == "current"] == ["v-a", "v-b"]
    assert task_run(ex, "vars")["outputs"]["value"] == "eu-west prod data 0 fallback"
    context = json.loads(task_run(ex, "context")["outputs"]["value"])
    assert context["flow"]["id"] == "functions" and context["outputs"]["vars"]["value"].startswith("eu-west")
    assert task_run(ex, "in_workdir")["outputs"]["value"] == task_run(ex, "workdir")["id"]
    assert "disk full" in task_run(ex, "alert")["outputs"]["value"]


def test_missing_kv_without_fallback_fails_clearly(tmp_path):
    ex = run_flow("""
id: kv_missing
namespace: company.team
tasks:
  - {id: read, type: io.kestra.plugin.core.debug.Return, format: "{{ kv('absent') }}"}
""", home=tmp_path / "home")
    assert ex["state"] == "FAILED"
    assert "kv key `absent` not found in namespace `company.team`" in task_run(ex, "read")["error"]


def test_file_functions(tmp_path):
    ex = run_flow("""
id: files
namespace: company.team
inputs:
  - {id: data, type: FILE}
tasks:
  - id: sizes
    type: io.kestra.plugin.core.debug.Return
    format: "{{ fileSize(inputs.data) }} {{ isFileEmpty(inputs.data) }} {{ fileExists(inputs.data) }} {{ fileURI('a/b.txt') }}"
""", inputs={"data": _file(tmp_path, b"abc")}, home=tmp_path / "home")
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "sizes")["outputs"]["value"] == "3 false true tiercel://company/team/_files/a/b.txt"


def _file(tmp_path, data):
    uri = "tiercel://company/team/files/uploads/data.txt"
    write_file(uri, data, tmp_path / "home")
    return uri
