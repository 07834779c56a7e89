"""Run flows from tests: in-process (fast) or through the real `tiercel` command (end to end)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def run_flow(source: str | Path, inputs: dict[str, Any] | None = None, home: str | Path | None = None,
             timeout: float = 60, flow_dirs: list[Path] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a flow (YAML text or a file) to the end in this process; return the execution JSON.

    The JSON is the one `tiercel run --json` prints: id, namespace, flowId, state, inputs,
    outputs, labels, taskRuns[{id, taskId, parentTaskRunId, value, state, attempts, outputs}].
    """
    from tiercel.engine.runtime import Runtime
    from tiercel.flow import load_flow, load_flow_file
    from tiercel.flow.inputs import resolve_inputs

    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))):
        flow = load_flow_file(Path(source))
        flow_dirs = flow_dirs or [Path(source).resolve().parent]
    else:
        flow = load_flow(str(source))
    home = Path(home) if home else Path(tempfile.mkdtemp(prefix="tiercel-home-"))
    runtime = Runtime(home, flow_dirs=flow_dirs)
    try:
        ex = runtime.new_execution(flow, resolve_inputs(flow, inputs or {}), labels=labels)
        runtime.submit(ex)

        async def main() -> None:
            stop = asyncio.Event()
            loop_task = asyncio.create_task(runtime.serve(stop, poll_interval=0.1))
            try:
                await asyncio.wait_for(runtime.wait(ex.id), timeout)
            finally:
                stop.set()
                runtime.wake()
                await loop_task

        asyncio.run(main())
        return runtime.repo.execution_json(ex.id)
    finally:
        runtime.close()


def tiercel(*args: str, home: str | Path | None = None, timeout: float = 120, env: dict[str, str] | None = None,
            cwd: str | Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the `tiercel` command as a subprocess (the way users do) and capture its output."""
    full_env = {**os.environ, **(env or {})}
    if home is not None:
        full_env["TIERCEL_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "tiercel.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd, check=check)


def run_json(flow_file: str | Path, *args: str, home: str | Path | None = None, **kw: Any) -> tuple[int, dict[str, Any] | None]:
    """`tiercel run FLOW --json`: (exit code, execution JSON or None)."""
    proc = tiercel("run", str(flow_file), "--json", *args, home=home, **kw)
    try:
        return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None
    except json.JSONDecodeError:
        raise AssertionError(f"`tiercel run --json` printed non-JSON:\n{proc.stdout}\n{proc.stderr}") from None


def task_run(execution: dict[str, Any], task_id: str, value: str | None = None) -> dict[str, Any]:
    """The task run of *task_id* (and ForEach *value*) in an execution JSON."""
    for tr in execution["taskRuns"]:
        if tr["taskId"] == task_id and (value is None or tr["value"] == value):
            return tr
    raise AssertionError(f"no task run `{task_id}` in {[t['taskId'] for t in execution['taskRuns']]}")
