"""The daily loop from the terminal against a server: start a deployed flow, run a file there, watch any
execution (task runs and logs in order, each failure once), follow logs; and the same on the embedded home."""

from __future__ import annotations

import json
import subprocess
import sys

from tiercel.testing.harness import tiercel

SLOW = """\
id: daily
namespace: demo.daily
inputs:
  - {id: who, type: STRING, defaults: world}
tasks:
  - {id: hello, type: core.Log, message: "hello {{ inputs.who }}"}
  - {id: nap, type: core.Sleep, duration: PT0.6S}
  - {id: boom, type: core.Fail, runIf: "{{ inputs.who == 'boom' }}", errorMessage: "it went boom"}
outputs:
  - {id: greeted, type: STRING, value: "{{ inputs.who }}"}
"""


def test_start_watch_and_follow_logs_on_a_server(server, api, tmp_path, h):
    h.deploy(api, SLOW)
    elsewhere = tmp_path / "unused-home"
    env = {"TIERCEL_SERVER": server.url}

    started = tiercel("executions", "start", "demo.daily", "daily", "-i", "who=Ada", home=elsewhere, env=env)
    assert started.returncode == 0, started.stderr
    execution_id = started.stdout.split("execution ")[1].split()[0]
    assert f"tiercel executions show {execution_id} --follow" in started.stdout

    watched = tiercel("executions", "show", execution_id, "--follow", home=elsewhere, env=env)
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert lines[0] == f"▶ demo.daily.daily: execution {execution_id}"
    hello = next(i for i, line in enumerate(lines) if "hello Ada" in line)
    done = next(i for i, line in enumerate(lines) if line.startswith("✔ hello SUCCESS"))
    assert hello < done < next(i for i, line in enumerate(lines) if line.startswith("✔ nap SUCCESS"))
    assert f"execution {execution_id} SUCCESS" in watched.stdout and '"greeted": "Ada"' in watched.stdout

    logs = tiercel("executions", "logs", execution_id, "--follow", home=elsewhere, env=env)
    assert logs.returncode == 0, logs.stderr
    assert "INFO  hello Ada" in logs.stdout

    failed = tiercel("executions", "start", "demo.daily", "daily", "-i", "who=boom", "--wait", home=elsewhere, env=env)
    assert failed.returncode == 1
    assert failed.stdout.count("it went boom") == 2, failed.stdout  # once as it fails, once in the summary
    assert "✘ boom FAILED" in failed.stdout

    as_json = tiercel("executions", "start", "demo.daily", "daily", "--wait", "--json", home=elsewhere, env=env)
    assert json.loads(as_json.stdout)["outputs"] == {"greeted": "world"}

    missing = tiercel("executions", "start", "demo.daily", "nope", home=elsewhere, env=env)
    assert missing.returncode == 1 and "nope" in missing.stderr
    assert not elsewhere.exists()

    log = server.log.read_text()  # the server says when executions start and end
    assert f"execution {execution_id} of demo.daily.daily started" in log
    assert f"execution {execution_id} of demo.daily.daily ended SUCCESS in " in log
    assert "ended FAILED" in log


def test_run_a_file_on_a_server_deploys_it_and_watches(server, api, tmp_path):
    path = tmp_path / "daily.yaml"
    path.write_text(SLOW)
    out = tiercel("run", str(path), "-i", "who=Bo", "--server", server.url, home=tmp_path / "unused")
    assert out.returncode == 0, out.stderr
    assert "created demo.daily.daily revision 1" in out.stdout and "hello Bo" in out.stdout
    again = tiercel("run", str(path), "--server", server.url, home=tmp_path / "unused")
    assert "revision" not in again.stdout.splitlines()[0]  # unchanged: no new revision
    assert api.get("/api/v1/flows/demo.daily/daily").json()["revision"] == 1


def test_start_and_follow_on_the_embedded_home(tmp_path):
    folder, home = tmp_path / "flows", tmp_path / "home"
    folder.mkdir()
    (folder / "daily.yaml").write_text(SLOW.replace("PT0.6S", "PT2S"))
    assert tiercel("flows", "deploy", str(folder), home=home).returncode == 0
    runner = subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", "executions", "start", "demo.daily", "daily",
                               "--home", str(home)], stdout=subprocess.PIPE, text=True)
    try:
        first = runner.stdout.readline()
        execution_id = first.split("execution ")[1].strip()
        watched = tiercel("executions", "show", execution_id, "--follow", home=home)
        assert watched.returncode == 0, watched.stderr
        assert "hello world" in watched.stdout and f"execution {execution_id} SUCCESS" in watched.stdout
    finally:
        assert runner.wait(30) == 0
