"""A cluster of real processes over one database: a webserver (the API), executors and workers.

Every process is a `tiercel` subprocess; tests SIGKILL them at will. Waiting is done by polling
the database or the API (never fixed sleeps).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tiercel.testing.harness import TiercelServer

LEASE = "2"  # seconds: a killed worker's attempts are LOST after at most ~3 s


class Cluster:
    def __init__(self, home: Path, env: dict[str, str] | None = None, db: str | None = None) -> None:
        self.home = home
        self.url = db or f"sqlite:///{home / 'tiercel.db'}"
        self.env = {"TIERCEL_LEASE_SECONDS": LEASE, "TIERCEL_DB": self.url, **(env or {})}
        self.procs: list[TiercelServer] = []
        self.web: TiercelServer | None = None
        self._stores: Any = None

    # --- processes -----------------------------------------------------------------------
    def webserver(self) -> TiercelServer:
        self.web = self._spawn("webserver", [])
        return self.web

    def executor(self) -> TiercelServer:
        return self._spawn("executor", [])

    def worker(self, concurrency: int = 4, queues: tuple[str, ...] = ()) -> TiercelServer:
        args = ["--concurrency", str(concurrency)]
        for q in queues:
            args += ["--queue", q]
        return self._spawn("worker", args)

    def _spawn(self, command: str, args: list[str]) -> TiercelServer:
        proc = TiercelServer(self.home, command=command, args=args, env=self.env).start()
        self.procs.append(proc)
        if command in ("executor", "worker"):
            wait_for(lambda: self.process_id(proc) is not None, 30, f"{command} registered")
        return proc

    def process_id(self, proc: TiercelServer) -> str | None:
        row = self.db.one("SELECT id FROM processes WHERE pid = ?", (proc.proc.pid,))  # type: ignore[union-attr]
        return row[0] if row else None

    def kill(self, proc: TiercelServer) -> None:
        proc.stop(signal.SIGKILL)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.alive():
                proc.stop()
        if self._stores is not None:
            self._stores.close()

    # --- the database and the API ----------------------------------------------------------
    @property
    def db(self) -> Any:
        if self._stores is None:
            from tiercel.backend import Stores

            self._stores = Stores.open(self.url)
        return self._stores.db

    def api(self) -> httpx.Client:
        assert self.web is not None
        return self.web.client()

    def deploy(self, source: str) -> None:
        assert self.web is not None
        self.web.deploy(source)

    def start(self, namespace: str, flow_id: str, n: int = 1) -> list[str]:
        with self.api() as api:
            ids = []
            for _ in range(n):
                r = api.post(f"/api/v1/executions/{namespace}/{flow_id}")
                assert r.status_code == 200, r.text
                ids.append(r.json()["id"])
            return ids

    def states(self, ids: list[str]) -> dict[str, str]:
        marks = ",".join("?" * len(ids))
        return dict(self.db.query(f"SELECT id, state FROM executions WHERE id IN ({marks})", ids))

    def wait_ended(self, ids: list[str], timeout: float = 30) -> dict[str, str]:
        ended = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}
        wait_for(lambda: all(s in ended for s in self.states(ids).values()) and len(self.states(ids)) == len(ids),
                 timeout, f"executions {ids} ended")
        return self.states(ids)

    def attempts(self, ids: list[str]) -> list[tuple[str, str, int, str, str | None]]:
        """(execution, task id, attempt, state, worker) of every attempt of the executions."""
        marks = ",".join("?" * len(ids))
        return [tuple(r) for r in self.db.query(  # type: ignore[misc]
            f"SELECT a.execution_id, t.task_id, a.attempt, a.state, a.worker FROM attempts a "
            f"JOIN task_runs t ON t.id = a.task_run_id WHERE a.execution_id IN ({marks}) "
            f"ORDER BY a.execution_id, t.task_id, a.attempt", ids)]

    def log_of(self, proc: TiercelServer) -> str:
        return proc.log.read_text(errors="replace")


def wait_for(predicate: Any, timeout: float = 20, what: str = "condition", every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value {value!r}")
        time.sleep(every)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """The database every process of the cluster shares: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "postgresql":
        return request.getfixturevalue("tiercel_pg_url")
    return f"sqlite:///{tmp_path / 'home' / 'tiercel.db'}"


@pytest.fixture
def make_cluster(tmp_path, backend):
    """``make_cluster(env)``: a cluster whose processes get *env*; all stopped after the test."""
    made: list[Cluster] = []

    def make(env: dict[str, str] | None = None) -> Cluster:
        assert not made, "one cluster per test (one database)"
        c = Cluster(tmp_path / "home", env=env, db=backend)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.fixture
def cluster(make_cluster):
    return make_cluster()


@pytest.fixture
def d():
    """Helpers (conftest modules are not importable with --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(wait_for=wait_for)
