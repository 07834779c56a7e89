"""The per-task log cap (overflow to a file in internal storage) and purging executions (CLI and task)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NOISY = """
id: noisy
namespace: test.retention
tasks:
  - id: talk
    type: scripts.Shell
    commands:
      - 'for i in $(seq 1 200); do echo "line $i of a chatty task"; done'
  - id: quiet
    type: core.Log
    message: short
"""


def test_a_task_log_past_the_cap_goes_to_internal_storage(tmp_path, monkeypatch):
    from tiercel.backend import Stores
    from tiercel.engine.storage import InternalStorage
    from tiercel.testing import run_flow

    monkeypatch.setenv("TIERCEL_TASK_LOG_CAP", "500")
    home = tmp_path / "home"
    result = run_flow(NOISY, home=home)
    assert result["state"] == "SUCCESS"
    stores = Stores.open(home / "tiercel.db")
    try:
        lines = stores.logs.query(result["id"], task_id="talk")
    finally:
        stores.close()
    kept = [line["message"] for line in lines if line["message"].startswith("line ")]
    assert 10 <= len(kept) < 30 and sum(map(len, kept)) <= 500  # the first lines, up to the cap
    (marker,) = [line for line in lines if "passed 500 characters" in line["message"]]
    assert marker["level"] == "WARN"
    uri = marker["message"].rsplit(" ", 1)[-1]
    assert uri.startswith("tiercel://") and uri.endswith("logs-1.txt")
    stored = (home / "storage" / InternalStorage.path_of(uri)).read_text().splitlines()
    assert stored[-1].endswith("line 200 of a chatty task") and len(kept) + len(stored) == 200
    assert not list((home / "spill").iterdir())  # the local spill file is gone once stored


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TIERCEL_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "tiercel.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_executions_purge_older_than(tmp_path):
    home = tmp_path / "home"
    flow = tmp_path / "f.yaml"
    flow.write_text("id: f\nnamespace: test.retention\ntasks:\n"
                    "  - {id: w, type: core.storage.Write, content: data}\n  - {id: l, type: core.Log, message: hi}\n")
    ids = [json.loads(_cli(home, "run", str(flow), "--json").stdout)["id"] for _ in range(2)]
    files = home / "storage" / "test" / "retention" / "f" / "executions"
    assert sorted(p.name for p in files.iterdir()) == sorted(ids)
    kept = _cli(home, "executions", "purge", "--older-than", "P30D")
    assert kept.returncode == 0, kept.stderr
    assert "purged 0 executions" in kept.stdout
    assert "would purge 2 executions" in _cli(home, "executions", "purge", "--older-than", "PT0S", "--dry-run").stdout
    purged = _cli(home, "executions", "purge", "--older-than", "PT0S")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.startswith("purged 2 executions, ") and "2 files" in purged.stdout
    assert _cli(home, "executions", "show", ids[0]).returncode != 0
    assert not [p for p in files.rglob("*") if p.is_file()]
    bad = _cli(home, "executions", "purge", "--older-than", "30 days")
    assert bad.returncode == 2 and "ISO-8601 duration" in bad.stderr


def test_purge_executions_task(tmp_path):
    from tiercel.testing import run_flow

    home = tmp_path / "home"
    old = run_flow("id: old\nnamespace: test.retention\ntasks:\n  - {id: l, type: core.Log, message: hi}\n", home=home)
    failed = run_flow("id: bad\nnamespace: test.retention\ntasks:\n  - {id: f, type: core.Fail}\n", home=home)
    result = run_flow("""
id: janitor
namespace: test.retention
tasks:
  - id: purge
    type: io.kestra.plugin.core.execution.PurgeExecutions
    endDate: "{{ now() }}"
    namespace: test.retention
    states: [SUCCESS]
""", home=home)
    assert result["state"] == "SUCCESS", result
    outputs = result["taskRuns"][0]["outputs"]
    assert outputs["executionsCount"] == 1 and outputs["logsCount"] >= 1 and outputs["metricsCount"] == 0
    from tiercel.backend import Stores

    stores = Stores.open(home / "tiercel.db")
    try:
        assert stores.executions.state(old["id"]) is None
        assert stores.executions.state(failed["id"]) == "FAILED"  # not in `states`
        assert stores.executions.state(result["id"]) == "SUCCESS"  # it was running: never purged
    finally:
        stores.close()
