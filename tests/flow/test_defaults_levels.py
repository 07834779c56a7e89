"""Plugin defaults at three levels (flow, namespace and its parents, global from tiercel.yaml):
precedence, forced values, errors in the file, and `tiercel validate --show-defaults`."""

from __future__ import annotations

import json

from tiercel.testing import run_flow, task_run, tiercel

CONFIG = """pluginDefaults:
  - {type: core.Log, values: {level: DEBUG, message: "global message"}}
  - {type: core.Return, values: {format: "global forced"}, forced: true}
namespaces:
  company:
    pluginDefaults:
      - {type: core.Log, values: {message: "company message"}}
      - {type: core.Return, values: {format: "company forced"}, forced: true}
  company.team:
    pluginDefaults:
      - {type: core.OutputValues, values: {values: {team: "from company.team"}}}
"""

FLOW = """id: levels
namespace: company.team
pluginDefaults:
  - {type: core.Log, values: {level: WARN}}
tasks:
  - {id: log, type: core.Log}
  - {id: ret, type: core.Return, format: "the task's own"}
  - {id: out, type: core.OutputValues}
"""


def test_nearest_level_wins_and_forced_replaces_the_tasks_value(tmp_path, monkeypatch):
    (tmp_path / "tiercel.yaml").write_text(CONFIG)
    monkeypatch.setenv("TIERCEL_CONFIG", str(tmp_path / "tiercel.yaml"))
    logs: list = []
    ex = run_flow(FLOW, home=tmp_path / "home", logs=logs)
    assert ex["state"] == "SUCCESS", ex
    assert ("log", "WARN", "company message") in logs  # level from the flow, message from company (not global)
    assert task_run(ex, "ret")["outputs"]["value"] == "company forced"  # the nearest forced default wins
    assert task_run(ex, "out")["outputs"]["values"] == {"team": "from company.team"}
    elsewhere = run_flow(FLOW.replace("company.team", "other"), home=tmp_path / "home", logs=logs)
    assert task_run(elsewhere, "ret")["outputs"]["value"] == "global forced"


def test_a_bad_configuration_file_is_an_error_naming_it(tmp_path, monkeypatch):
    (tmp_path / "tiercel.yaml").write_text("namespaces:\n  company:\n    pluginDefaults:\n      - {values: {}}\n")
    monkeypatch.setenv("TIERCEL_CONFIG", str(tmp_path / "tiercel.yaml"))
    (tmp_path / "f.yaml").write_text(FLOW)
    proc = tiercel("validate", str(tmp_path / "f.yaml"))
    assert proc.returncode == 1
    assert f"{tmp_path / 'tiercel.yaml'}: namespaces.company.pluginDefaults[0]: Field required (type)" in proc.stdout


def test_validate_shows_the_defaults_that_apply(tmp_path):
    (tmp_path / "tiercel.yaml").write_text(CONFIG)
    (tmp_path / "f.yaml").write_text(FLOW)
    proc = tiercel(
        "validate",
        str(tmp_path / "f.yaml"),
        "--show-defaults",
        "--format",
        "json",
        env={"TIERCEL_CONFIG": str(tmp_path / "tiercel.yaml")},
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    levels = [(d["level"], d["type"], d["forced"]) for d in report[0]["defaults"]]
    assert levels == [
        ("flow", "core.Log", False),
        ("namespace company.team", "core.OutputValues", False),
        ("namespace company", "core.Log", False),
        ("namespace company", "core.Return", True),
        ("global", "core.Log", False),
        ("global", "core.Return", True),
    ]
