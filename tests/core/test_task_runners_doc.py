"""docs/user/task-runners.md stays true: its flows validate, and the process runner's runs (the plugins'
tests run theirs: plugins/tiercel-{docker,ssh,kubernetes}/tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tiercel.flow import load_flow
from tiercel.plugins import load_registry
from tiercel.testing import read_file, run_flow, task_run

DOC = Path(__file__).resolve().parents[2] / "docs" / "user" / "task-runners.md"
FLOWS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)


@pytest.mark.parametrize("flow", FLOWS, ids=[re.search(r"^id: (\S+)", f, re.M).group(1) for f in FLOWS])
def test_every_flow_in_the_guide_is_valid(flow: str) -> None:
    registry = load_registry()
    for type_name in re.findall(r"type: ([a-z]+\.[A-Z]\w+)", flow):
        if registry.get("task", type_name) is None and registry.get("runner", type_name) is None:
            pytest.skip(f"needs the plugin of {type_name}")
    assert load_flow(flow, str(DOC), registry=registry).id


def test_the_process_example_runs(tmp_path: Path) -> None:
    flow = next(f for f in FLOWS if "id: task_runners_process\n" in f)
    execution = run_flow(flow, home=tmp_path)
    count = task_run(execution, "count")
    assert count["state"] == "SUCCESS", execution
    assert count["outputs"]["vars"] == {"lines": 3}
    assert read_file(count["outputs"]["outputFiles"]["report.txt"], tmp_path) == b"3\n"
