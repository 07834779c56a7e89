"""Run flows from tests: in-process (fast) or through the real `tiercel` command (end to end)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def run_flow(source: str | Path, inputs: dict[str, Any] | None = None, home: str | Path | None = None,
             timeout: float = 60, flow_dirs: list[Path] | None = None, labels: dict[str, str] | None = None,
             registry: Any = None, logs: list[tuple[str | None, str, str]] | None = None,
             kill_when: Callable[[], Awaitable[Any]] | None = None) -> dict[str, Any]:
    """Run a flow (YAML text or a file) to the end in this process; return the execution JSON.

    The JSON is the one `tiercel run --json` prints: id, namespace, flowId, state, inputs,
    outputs, labels, taskRuns[{id, taskId, parentTaskRunId, value, state, attempts, outputs}].
    *registry* replaces the installed plugins (a probe registry); *logs* receives each log line
    as (task id, level, message) as it is written; the execution is killed once the awaitable
    *kill_when()* returns. Raises TimeoutError when it does not end within *timeout* seconds.
    """
    from tiercel.engine.runtime import Runtime
    from tiercel.flow import load_flow, load_flow_file
    from tiercel.flow.inputs import resolve_inputs

    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))):
        flow = load_flow_file(Path(source), registry=registry)
        flow_dirs = flow_dirs or [Path(source).resolve().parent]
    else:
        flow = load_flow(str(source), registry=registry)
    home = Path(home) if home else Path(tempfile.mkdtemp(prefix="tiercel-home-"))
    runtime = Runtime(home, registry=registry, flow_dirs=flow_dirs)
    if logs is not None:
        runtime.listeners.append(lambda kind, payload: logs.append((payload[1], payload[2], payload[3]))
                                 if kind == "log" else None)
    try:
        ex = runtime.new_execution(flow, resolve_inputs(flow, inputs or {}), labels=labels)

        async def main() -> None:
            stop = asyncio.Event()
            loop_task = asyncio.create_task(runtime.serve(stop, poll_interval=0.1))
            killer = None
            if kill_when is not None:
                async def kill() -> None:
                    await kill_when()
                    runtime.kill(ex.id)

                killer = asyncio.create_task(kill())
            try:
                runtime.submit(ex)
                await asyncio.wait_for(runtime.wait(ex.id), timeout)
            finally:
                if killer is not None:
                    killer.cancel()
                stop.set()
                runtime.wake()
                await loop_task

        _run_loop(main())
        result = runtime.stores.executions.json(ex.id)
        assert result is not None
        return result
    finally:
        runtime.close()


def _run_loop(coro: Any) -> Any:
    """Like asyncio.run, without waiting for worker threads a misbehaving blocking run() never ends."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


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


class TiercelServer:
    """A real `tiercel server` subprocess on a free port over *home*, stopped (or SIGKILLed) by its pid.

    For end-to-end tests of triggers and the API: ``TiercelServer(tmp_path / "home").start()``,
    then ``.deploy(yaml)``, ``.client()``, ``.stop(signal.SIGKILL)``, ``.start()`` again.
    """

    def __init__(self, home: Path, port: int | None = None, env: dict[str, str] | None = None,
                 command: str = "server", args: list[str] | None = None) -> None:
        from tiercel.testing.services import free_port

        self.home, self.port = Path(home), port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.command = command
        self.args = list(args or [])
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.home / f"server-{self.port}.log"
        self._out: Any = None

    def start(self, timeout: float = 30) -> TiercelServer:
        import httpx

        self.home.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "tiercel.cli.main", self.command, "--home", str(self.home)]
        if self.command in ("server", "webserver"):
            args += ["--port", str(self.port)]
        args += self.args
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env=self.env)
        if self.command not in ("server", "webserver"):
            time.sleep(0.5)  # no API to ask: give the process a moment to open its home
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server did not start in {timeout} s:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"server did not stop in {timeout} s:\n{self.log.read_text()}") from None
        if self._out is not None:
            self._out.close()
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout: float = 30) -> Any:
        import httpx

        return httpx.Client(base_url=self.url, timeout=timeout)

    def deploy(self, source: str) -> dict[str, Any]:
        """Create or update a flow from its YAML source."""
        import httpx

        r = httpx.post(f"{self.url}/api/v1/flows", content=source, headers={"Content-Type": "application/x-yaml"},
                       timeout=30)
        assert r.status_code == 200, r.text
        return r.json()


def triggered(home: str | Path, flow_id: str) -> list[dict[str, Any]]:
    """The ``trigger.variables`` of every execution of *flow_id* in a home (read straight from its database)."""
    from tiercel.backend import Stores

    path = Path(home) / "tiercel.db"
    if not path.exists():
        return []
    stores = Stores.open(path)
    try:
        return [e["trigger"]["variables"] for e in stores.executions.triggers_of(flow_id) if e["trigger"]]
    finally:
        stores.close()


def wait_triggered(home: str | Path, flow_id: str, count: int, timeout: float,
                   server: TiercelServer | None = None, interval: float = 0.1) -> list[dict[str, Any]]:
    """Poll every *interval* s until *count* executions of *flow_id* exist (or *timeout*); their trigger variables."""
    deadline = time.monotonic() + timeout
    while True:
        found = triggered(home, flow_id)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        if server is not None:
            assert server.alive(), server.log.read_text()[-3000:]
        time.sleep(interval)
