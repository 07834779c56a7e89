"""The kubernetes.Kubernetes flow of docs/user/task-runners.md runs as the guide says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tiercel.testing import read_file, run_flow, task_run

DOC = Path(__file__).resolve().parents[3] / "docs" / "user" / "task-runners.md"


def guide_flow(flow_id: str) -> str:
    return next(f for f in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S) if f"id: {flow_id}\n" in f)


def test_the_guide_kubernetes_example_runs(cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERCEL_SECRET_K8S_TOKEN", "test")
    execution = run_flow(guide_flow("task_runners_kubernetes"), inputs={"masterUrl": cluster.url}, home=tmp_path)
    count = task_run(execution, "count")
    assert count["state"] == "SUCCESS", execution
    assert count["outputs"]["vars"] == {"lines": 3}
    assert read_file(count["outputs"]["outputFiles"]["report.txt"], tmp_path) == b"3\n"
