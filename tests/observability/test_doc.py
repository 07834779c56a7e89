"""docs/operations/observability.md stays true: its example runs as written; the dashboard asks only for real metrics."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tiercel.testing.services import free_port

DOCS = Path(__file__).parents[2] / "docs/operations"


def test_the_example_runs(tmp_path):
    script = re.search(r"<!-- test: run -->\n```sh\n(.*?)```", (DOCS / "observability.md").read_text(), re.S).group(1)
    env = {**os.environ, "PORT": str(free_port()),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script + "\nwait\n"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == '{"status":"UP"}'
    assert json.loads(lines[1])["checks"]["storage"] == {"status": "UP"}
    assert 'tiercel_executions_total{flow="hello",namespace="company.team",state="SUCCESS"} 1.0' in lines
    assert any(line.startswith("tiercel_task_run_duration_seconds_count{") and "core.Sleep" in line
               and line.endswith(" 1.0") for line in lines)
    logged = json.loads(lines[-1])
    assert logged["taskId"] == "say" and logged["message"] == "hello" and logged["executionId"]


def test_every_metric_is_documented_and_the_dashboard_uses_real_ones():
    from tiercel.observability import metrics

    doc = (DOCS / "observability.md").read_text()
    names = {m.name + ("_total" if isinstance(m, metrics.Counter) else "") for m in metrics.ALL}
    names |= {"tiercel_executions_running", "tiercel_worker_slots", "tiercel_worker_jobs_waiting"}
    for name in names:
        assert f"`{name}`" in doc, name
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    used = {n for p in dashboard["panels"] for t in p["targets"] for n in re.findall(r"tiercel_[a-z_]+", t["expr"])}
    known = names | {n + suffix for n in names for suffix in ("_bucket", "_sum", "_count")}
    assert used and used <= known, used - known
