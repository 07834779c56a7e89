"""Task metrics (Kestra's ``::{"metrics":[...]}::`` lines from scripts, ctx.metric) stored and shown: CLI and API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

FLOW = r"""
id: measured
namespace: test.metrics
tasks:
  - id: count
    type: scripts.Shell
    commands:
      - 'echo "::{\"metrics\":[{\"name\":\"rows\",\"type\":\"counter\",\"value\":42,\"tags\":{\"table\":\"orders\"}}]}::"'
      - 'echo "::{\"metrics\":[{\"name\":\"load\",\"type\":\"timer\",\"value\":1.5}]}::"'
"""


def _cli(home, *args):
    env = {**os.environ, "TIERCEL_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "tiercel.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_script_metrics_are_stored_and_shown(tmp_path):
    flow = tmp_path / "f.yaml"
    flow.write_text(FLOW)
    ran = _cli(tmp_path / "home", "run", str(flow), "--json")
    assert ran.returncode == 0, ran.stderr
    execution_id = json.loads(ran.stdout)["id"]
    shown = _cli(tmp_path / "home", "executions", "show", execution_id, "--json")
    assert shown.returncode == 0, shown.stderr
    (run,) = json.loads(shown.stdout)["taskRuns"]
    assert [(m["name"], m["type"], m["value"], m["tags"]) for m in run["metrics"]] == [
        ("rows", "counter", 42.0, {"table": "orders"}), ("load", "timer", 1.5, {})]
    text = _cli(tmp_path / "home", "executions", "show", execution_id)
    assert "metrics:" in text.stdout
    assert any("rows" in line and "counter" in line and "42" in line and "table=orders" in line
               for line in text.stdout.splitlines())


def test_the_api_shows_them(tmp_path):
    from tiercel.testing.harness import TiercelServer

    server = TiercelServer(tmp_path / "home").start()
    try:
        client = server.client()
        assert client.post("/api/v1/flows", content=FLOW, headers={"Content-Type": "application/x-yaml"}).status_code == 200
        execution = client.post("/api/v1/executions/test.metrics/measured", params={"wait": True}).json()
        shown = client.get(f"/api/v1/executions/{execution['id']}").json()
        (run,) = shown["taskRuns"]
        assert {m["name"]: m["value"] for m in run["metrics"]} == {"rows": 42.0, "load": 1.5}
    finally:
        server.stop()
