"""A real `tiercel server` subprocess on a free port (tiercel.testing.harness.TiercelServer), and an httpx client to it."""

from __future__ import annotations

import time

import httpx
import pytest

from tiercel.testing.harness import TiercelServer as ServerProcess
from tiercel.testing.services import free_port


@pytest.fixture
def server(tmp_path):
    proc = ServerProcess(tmp_path / "home").start()
    yield proc
    proc.stop()


@pytest.fixture
def secure_server(tmp_path):
    """A server with authentication on (cheap argon2 parameters, so tests stay fast)."""
    proc = ServerProcess(tmp_path / "home", env={"TIERCEL_PASSWORD_HASH": "cheapest"}, args=["--auth"]).start()
    yield proc
    proc.stop()


def make_token(home, role: str, namespace: str = "") -> str:
    """A token straight from the home's store (the CLI's own test runs `tiercel tokens create`)."""
    from tiercel.backend import Stores

    stores = Stores.of_home(home)
    try:
        return stores.auth.create_token(role, namespace)[1]
    finally:
        stores.close()


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
                           free_port=free_port, make_token=make_token)
