"""--log-format json: every line a JSON object; task lines carry execution, flow, namespace, task, task-run, attempt ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

FLOW = """
id: logged
namespace: test.logs
tasks:
  - id: greet
    type: core.Log
    message: hello from a task
  - id: again
    type: core.Log
    level: WARN
    message: second line
"""


def test_run_logs_json_lines_with_ids(tmp_path):
    flow = tmp_path / "f.yaml"
    flow.write_text(FLOW)
    env = {**os.environ, "TIERCEL_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "run", str(flow), "--json", "--log-format", "json"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    execution = json.loads(out.stdout)
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.strip()]  # every line parses
    task_lines = [line for line in lines if line["logger"] == "tiercel.task"]
    greet = next(line for line in task_lines if line["message"] == "hello from a task")
    run = next(t for t in execution["taskRuns"] if t["taskId"] == "greet")
    assert greet["executionId"] == execution["id"] and greet["namespace"] == "test.logs"
    assert greet["flowId"] == "logged" and greet["taskId"] == "greet" and greet["taskRunId"] == run["id"]
    assert greet["attemptNumber"] == 1 and greet["level"] == "INFO" and greet["timestamp"].endswith("Z")
    assert next(line for line in task_lines if line["message"] == "second line")["level"] == "WARNING"
    engine = [line for line in lines if line["logger"] == "tiercel.engine"]
    assert any(line.get("executionId") == execution["id"] and line.get("flowId") == "logged" for line in engine)


def test_server_logs_json(tmp_path):
    from tiercel.testing.harness import TiercelServer

    server = TiercelServer(tmp_path / "home", args=["--log-format", "json"]).start()
    try:
        client = server.client()
        assert client.post("/api/v1/flows", content=FLOW, headers={"Content-Type": "application/x-yaml"}).status_code == 200
        execution = client.post("/api/v1/executions/test.logs/logged", params={"wait": True}).json()
        time.sleep(0.3)
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    assert any(line.get("taskId") == "greet" and line.get("executionId") == execution["id"]
               and line["message"] == "hello from a task" for line in lines)
    assert any("ready" in line["message"] for line in lines)
