"""A real `tiercel server` subprocess on a free port, and an httpx client to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`python -m tiercel.cli.main server --port P --home H`, started and stopped by the test."""

    def __init__(self, home: Path, port: int | None = None, env: dict[str, str] | None = None,
                 command: str = "server") -> None:
        self.home, self.port = home, port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.command = command
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"server-{self.port}.log"

    def start(self, timeout: float = 20) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "tiercel.cli.main", self.command, "--home", str(self.home)]
        if self.command in ("server", "webserver"):
            args += ["--port", str(self.port)]
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env=self.env)
        if self.command not in ("server", "webserver"):
            time.sleep(0.5)
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

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"server did not stop in {timeout} s:\n{self.log.read_text()}") from None
        self._out.close()
        return self.proc.returncode

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


@pytest.fixture
def server(tmp_path):
    proc = ServerProcess(tmp_path / "home").start()
    yield proc
    proc.stop()


@pytest.fixture
def api(server):
    with server.client() as client:
        yield client


def deploy(client: httpx.Client, source: str) -> dict:
    r = client.post("/api/v1/flows", content=source, headers={"Content-Type": "application/x-yaml"})
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(predicate, timeout: float = 15, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s; last value {value!r}")
        time.sleep(every)


def executions(client: httpx.Client, flow_id: str, **params) -> list[dict]:
    r = client.get("/api/v1/executions/search", params={"flowId": flow_id, "size": 1000, **params})
    assert r.status_code == 200, r.text
    return r.json()["results"]


@pytest.fixture
def h():
    """Helpers for tests (conftest modules are not importable with --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(deploy=deploy, wait_for=wait_for, executions=executions, ServerProcess=ServerProcess,
                           free_port=free_port)
