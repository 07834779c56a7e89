"""The CLI as a user runs it: a subprocess, with the test plugin installed through PYTHONPATH."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "plugin_fixture"
VALID = Path(__file__).parent / "flows" / "valid.yaml"
BROKEN_PLUGIN = Path(__file__).parent / "plugin_broken"


def tiercel(*args, extra_path=(), env=None):
    path = os.pathsep.join([str(FIXTURE), *map(str, extra_path), os.environ.get("PYTHONPATH", "")])
    full_env = {k: v for k, v in os.environ.items() if k != "TIERCEL_PLUGINS"}
    full_env.update({"PYTHONPATH": path, **(env or {})})
    return subprocess.run([sys.executable, "-m", "tiercel.cli.main", *args], capture_output=True, text=True,
                          env=full_env, timeout=60)


@pytest.fixture
def bad_flow(tmp_path):
    path = tmp_path / "flows" / "team" / "bad.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("id: bad\nnamespace: team\ntasks:\n  - id: nap\n    type: test.Nap\n    duration: PT1S\n"
                    "    colour: red\n  - id: l\n    type: test.Logg\n")
    return path


def test_validate_ok():
    result = tiercel("validate", str(VALID))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "OK: 1 flow valid"


def test_validate_folder_with_errors(tmp_path, bad_flow):
    (tmp_path / "flows" / "good.yml").write_text(VALID.read_text())
    result = tiercel("validate", str(tmp_path / "flows"))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{bad_flow}:7:5: task `nap`: unknown property `colour` (did you mean `color`?)",
        f"{bad_flow}:9:11: task `l`: unknown task type `test.Logg` (did you mean test.Log?)",
    ]
    assert result.stderr.strip() == "2 errors in 1 file"


def test_validate_json(bad_flow):
    result = tiercel("validate", "--format", "json", str(bad_flow), str(VALID))
    assert result.returncode == 1
    errors = json.loads(result.stdout)
    assert [(e["line"], e["column"], e["task_id"], e["property"]) for e in errors] == [
        (7, 5, "nap", "tasks[0].colour"), (9, 11, "l", "tasks[1].type")]
    assert errors[1]["suggestion"] == "did you mean test.Log?"


def test_validate_missing_path(tmp_path):
    result = tiercel("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1 and "no such file or folder" in result.stdout


def test_schema_to_file(tmp_path):
    out = tmp_path / "flow.schema.json"
    result = tiercel("schema", "--out", str(out))
    assert result.returncode == 0, result.stderr
    schema = json.loads(out.read_text())
    assert "test.Log" in schema["definitions"]["task"]["properties"]["type"]["enum"]
    assert "core.Log" in schema["definitions"]["task"]["properties"]["type"]["enum"]


def test_schema_stdout():
    result = tiercel("schema")
    assert json.loads(result.stdout)["title"] == "Tiercel flow"


def test_plugins_list_reports_a_broken_plugin_without_crashing():
    result = tiercel("plugins", "list", "--json", extra_path=[BROKEN_PLUGIN])
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["tiercel-testplug"]["components"]["trigger"] == ["test.Tick"]
    assert plugins["tiercel-testplug"]["version"] == "1.0"
    assert "cannot import tiercel_brokenplug" in plugins["tiercel-brokenplug"]["errors"][0]
    assert "core.Log" in plugins["tiercel"]["components"]["task"]
    text = tiercel("plugins", "list", extra_path=[BROKEN_PLUGIN])
    assert text.returncode == 0
    assert "tiercel-testplug 1.0" in text.stdout and "error: cannot import tiercel_brokenplug" in text.stdout


def test_plugins_list_allowlist():
    result = tiercel("plugins", "list", "--json", env={"TIERCEL_PLUGINS": ""})
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["tiercel-testplug"]["skipped"] == "not in TIERCEL_PLUGINS"


def test_plugins_info():
    result = tiercel("plugins", "info", "io.test.log.Log")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("test.Log  (task, tiercel-testplug 1.0)")
    assert "Write a message to the logs." in out
    assert "  message: string  (required)\n      What to log." in out
    assert '  level: DEBUG | INFO | WARN | ERROR  = "INFO"' in out
    assert "Example: hello" in out


def test_plugins_info_unknown_type():
    result = tiercel("plugins", "info", "test.Logg")
    assert result.returncode == 1
    assert "unknown type `test.Logg` (did you mean test.Log?)" in result.stderr
