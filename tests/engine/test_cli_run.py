"""`tiercel run` and `tiercel executions|flows` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiercel.testing.harness import run_json, task_run, tiercel

HELLO = """id: hello
namespace: company.team
inputs:
  - {id: name, type: STRING, defaults: world}
  - {id: times, type: INT, required: false, defaults: 1}
tasks:
  - {id: say, type: core.Log, message: "Hello, {{ inputs.name }}"}
  - {id: answer, type: core.Return, format: "{{ 6 * inputs.times }}"}
outputs:
  - {id: result, type: INT, value: "{{ outputs.answer.value }}"}
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "hello.yaml").write_text(HELLO)
    (folder / "fail.yaml").write_text("id: fail\nnamespace: company.team\ntasks:\n"
                                      "  - {id: boom, type: core.Fail, errorMessage: broken on purpose}\n")
    (folder / "pause.yaml").write_text("id: pause\nnamespace: company.team\ntasks:\n  - {id: gate, type: core.Pause}\n"
                                       "  - {id: after, type: core.Return, format: \"{{ outputs.gate.onResume.who }}\"}\n")
    return folder


def test_run_json_shape_and_exit_code(flows, tmp_path):
    code, ex = run_json(flows / "hello.yaml", "-i", "name=Ada", "-i", "times=7", home=tmp_path / "h")
    assert code == 0
    assert {"id", "namespace", "flowId", "state", "inputs", "outputs", "labels", "taskRuns"} <= set(ex)
    assert ex["state"] == "SUCCESS" and ex["flowId"] == "hello" and ex["namespace"] == "company.team"
    assert ex["inputs"] == {"name": "Ada", "times": 7}
    assert ex["outputs"] == {"result": 42}
    tr = task_run(ex, "answer")
    assert {"id", "taskId", "parentTaskRunId", "value", "state", "attempts", "outputs"} <= set(tr)
    assert tr["attempts"] == [{"state": "SUCCESS", "startDate": tr["attempts"][0]["startDate"],
                               "endDate": tr["attempts"][0]["endDate"]}]


def test_failed_flow_exits_1_and_plain_output_shows_progress(flows, tmp_path):
    proc = tiercel("run", str(flows / "fail.yaml"), home=tmp_path / "h")
    assert proc.returncode == 1
    assert "boom FAILED" in proc.stdout
    assert "broken on purpose" in proc.stdout
    ok = tiercel("run", str(flows / "hello.yaml"), home=tmp_path / "h")
    assert ok.returncode == 0
    assert "Hello, world" in ok.stdout and "SUCCESS" in ok.stdout


def test_invalid_flow_and_inputs_exit_2_with_clear_messages(flows, tmp_path):
    bad = flows / "bad.yaml"
    bad.write_text("id: bad\nnamespace: company.team\ntasks:\n  - id: nap\n    type: core.Logg\n    message: hi\n")
    proc = tiercel("run", str(bad), home=tmp_path / "h")
    assert proc.returncode == 2
    assert "bad.yaml:5" in proc.stderr and "core.Log" in proc.stderr
    wrong = tiercel("run", str(flows / "hello.yaml"), "-i", "times=many", home=tmp_path / "h")
    assert wrong.returncode == 2
    assert "times" in wrong.stderr and "INT" in wrong.stderr
    required = flows / "req.yaml"
    required.write_text("id: req\nnamespace: company.team\ninputs: [{id: who, type: STRING}]\n"
                        "tasks: [{id: x, type: core.Log, message: '{{ inputs.who }}'}]\n")
    missing = tiercel("run", str(required), home=tmp_path / "h")
    assert missing.returncode == 2
    assert "who" in missing.stderr


def test_executions_list_show_logs(flows, tmp_path):
    home = tmp_path / "h"
    _, ex = run_json(flows / "hello.yaml", home=home)
    listed = json.loads(tiercel("executions", "list", "--json", home=home).stdout)
    assert listed["total"] == 1 and listed["results"][0]["id"] == ex["id"]
    shown = json.loads(tiercel("executions", "show", ex["id"], "--json", home=home).stdout)
    assert shown["outputs"] == {"result": 6}
    logs = tiercel("executions", "logs", ex["id"], home=home).stdout
    assert "Hello, world" in logs
    missing = tiercel("executions", "show", "nope", home=home)
    assert missing.returncode != 0 and "no execution `nope`" in missing.stderr


def test_restart_reruns_failed_task_as_new_attempt(flows, tmp_path):
    home = tmp_path / "h"
    _, ex = run_json(flows / "fail.yaml", home=home)
    proc = tiercel("executions", "restart", ex["id"], "--json", home=home)
    again = json.loads(proc.stdout)
    assert again["id"] == ex["id"]
    assert [a["state"] for a in task_run(again, "boom")["attempts"]] == ["FAILED", "FAILED"]


def test_replay_from_a_task_reuses_what_ran_before(flows, tmp_path):
    home = tmp_path / "h"
    _, ex = run_json(flows / "hello.yaml", home=home)
    proc = tiercel("executions", "replay", ex["id"], "--from", "answer", "--json", home=home)
    new = json.loads(proc.stdout)
    assert new["id"] != ex["id"] and new["originalId"] == ex["id"] and new["state"] == "SUCCESS"
    assert task_run(new, "say")["startDate"] == task_run(ex, "say")["startDate"]  # reused, not re-run
    assert task_run(new, "answer")["startDate"] != task_run(ex, "answer")["startDate"]


def _db_rows(home: Path, sql: str, params: tuple = ()) -> list[tuple]:
    from tiercel.backend import Stores

    if not Stores.exists(home):
        return []
    try:
        stores = Stores.of_home(home)
    except Exception:  # the schema is being created
        return []
    try:
        return stores.db.query(sql, params)
    finally:
        stores.close()


def _wait_for_state(home: Path, flow_id: str, state: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _db_rows(home, "SELECT id, state FROM executions WHERE flow_id = ? ORDER BY created_at DESC", (flow_id,))
        if rows and rows[0][1] == state:
            return rows[0][0]
        time.sleep(0.02)
    raise AssertionError(f"no {flow_id} execution reached {state}")


def _spawn_run(flow: Path, home: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", "run", str(flow), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TIERCEL_HOME": str(home)})


def test_pause_then_resume_from_another_process(flows, tmp_path):
    home = tmp_path / "h"
    runner = _spawn_run(flows / "pause.yaml", home)
    execution_id = _wait_for_state(home, "pause", "PAUSED")
    proc = tiercel("executions", "resume", execution_id, "-i", "who=alice", home=home)
    assert proc.returncode == 0, proc.stderr
    out, _ = runner.communicate(timeout=30)
    ex = json.loads(out)
    assert runner.returncode == 0 and ex["state"] == "SUCCESS"
    assert task_run(ex, "after")["outputs"]["value"] == "alice"


def test_kill_from_another_process(flows, tmp_path):
    home = tmp_path / "h"
    (flows / "long.yaml").write_text("id: long\nnamespace: company.team\ntasks:\n"
                                     "  - {id: nap, type: core.Sleep, duration: PT60S}\n")
    runner = _spawn_run(flows / "long.yaml", home)
    execution_id = _wait_for_state(home, "long", "RUNNING")
    assert tiercel("executions", "kill", execution_id, home=home).returncode == 0
    out, _ = runner.communicate(timeout=30)
    assert runner.returncode == 1
    assert json.loads(out)["state"] == "KILLED"


def test_crash_then_resume_loses_nothing_and_reruns_nothing_completed(flows, tmp_path):
    """kill -9 a `tiercel run` mid-flow; `executions resume` finishes it."""
    home = tmp_path / "h"
    (flows / "crashy.yaml").write_text("""id: crashy
namespace: company.team
tasks:
  - {id: first, type: core.Return, format: first}
  - id: loop
    type: core.ForEach
    values: [1, 2, 3, 4, 5]
    tasks:
      - {id: nap, type: core.Sleep, duration: PT0.5S}
  - {id: last, type: core.Return, format: "{{ outputs.first.value }}-last"}
""")
    runner = _spawn_run(flows / "crashy.yaml", home)
    execution_id = _wait_for_state(home, "crashy", "RUNNING")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until some iterations are done
        done = _db_rows(home, "SELECT COUNT(*) FROM task_runs WHERE execution_id = ? AND task_id = 'nap' "
                              "AND state = 'SUCCESS'", (execution_id,))
        if done and done[0][0] >= 2:
            break
        time.sleep(0.02)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    before = json.loads(tiercel("executions", "show", execution_id, "--json", home=home).stdout)
    assert before["state"] == "RUNNING"
    done_before = {tr["id"]: tr for tr in before["taskRuns"] if tr["state"] == "SUCCESS"}
    proc = tiercel("executions", "resume", execution_id, "--json", home=home)
    after = json.loads(proc.stdout)
    assert proc.returncode == 0 and after["state"] == "SUCCESS"
    assert task_run(after, "last")["outputs"]["value"] == "first-last"
    naps = [tr for tr in after["taskRuns"] if tr["taskId"] == "nap"]
    assert sorted(tr["value"] for tr in naps) == ["1", "2", "3", "4", "5"]  # none lost, none doubled
    for tr in after["taskRuns"]:
        if tr["id"] in done_before:  # completed task runs were not re-run
            assert tr["attempts"] == done_before[tr["id"]]["attempts"]


def test_flows_deploy_sync_and_subflow_lookup(flows, tmp_path):
    home = tmp_path / "h"
    repo = tmp_path / "repo"
    (repo / "company" / "team").mkdir(parents=True)
    (repo / "company" / "team" / "child.yaml").write_text(
        "id: child\nnamespace: company.team\ntasks: [{id: r, type: core.Return, format: from-child}]\n"
        "outputs: [{id: v, type: STRING, value: '{{ outputs.r.value }}'}]\n")
    (repo / "company" / "team" / "other.yaml").write_text(
        "id: other\nnamespace: company.team\ntasks: [{id: r, type: core.Log, message: x}]\n")
    out = tiercel("flows", "deploy", str(repo), home=home)
    assert out.returncode == 0 and "2 new" in out.stdout
    again = tiercel("flows", "deploy", str(repo), home=home)
    assert "0 new, 0 updated, 2 unchanged" in again.stdout
    caller = tmp_path / "elsewhere.yaml"
    caller.write_text("id: caller\nnamespace: company.team\ntasks:\n"
                      "  - {id: call, type: core.Subflow, namespace: company.team, flowId: child}\n")
    code, ex = run_json(caller, home=home)
    assert code == 0 and task_run(ex, "call")["outputs"]["outputs"] == {"v": "from-child"}
    (repo / "company" / "team" / "other.yaml").unlink()
    synced = tiercel("flows", "deploy", str(repo), "--delete", home=home)
    assert "- company.team.other" in synced.stdout
    listed = json.loads(tiercel("flows", "list", "--json", home=home).stdout)
    assert [(f["namespace"], f["id"]) for f in listed] == [("company.team", "child")]


def test_the_first_command_of_the_readme_and_of_running_md_succeed_as_written(tmp_path):
    root = Path(__file__).resolve().parents[2]
    for doc in ("README.md", "docs/user/running.md"):
        text = (root / doc).read_text()
        line = next(m.group(1) for m in re.finditer(r"(?:^|&& )(?:\.venv/bin/)?tiercel (run [^\n`]+)", text, re.M))
        out = tiercel(*shlex.split(line), "--json", home=tmp_path / doc, cwd=root)
        assert out.returncode == 0, f"{doc}: `tiercel {line}` failed:\n{out.stdout[-800:]}\n{out.stderr[-800:]}"


def test_the_home_is_the_projects_wherever_you_stand_and_reading_never_creates_one(tmp_path, monkeypatch):
    monkeypatch.delenv("TIERCEL_DB", raising=False)  # about the embedded database of a home (any --tiercel-db)
    project = tmp_path / "project"
    (project / ".tiercel").mkdir(parents=True)
    (project / "flows" / "deep").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "TIERCEL_HOME"}
    flow = project / "flows" / "hello.yaml"
    flow.write_text("id: hello\nnamespace: demo\ntasks:\n  - {id: a, type: core.Log, message: hi}\n")
    ran = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "run", str(flow), "--json"], cwd=project,
                         env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    execution_id = json.loads(ran.stdout)["id"]
    listed = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "executions", "list"],
                            cwd=project / "flows" / "deep", env=env, capture_output=True, text=True)
    assert execution_id in listed.stdout, listed.stderr  # found from a subfolder of the project

    nowhere = tmp_path / "nowhere"
    for command in (["executions", "list"], ["executions", "show", execution_id], ["flows", "list"],
                    ["triggers", "list"]):
        out = tiercel(*command, home=nowhere)
        assert out.returncode == 1 and "holds no Tiercel database yet" in out.stderr, (command, out.stderr)
    assert not nowhere.exists()
