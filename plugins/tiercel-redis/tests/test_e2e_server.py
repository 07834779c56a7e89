"""End to end through a running `tiercel server`: 1,000 items, a SIGKILL in the middle, a broker that is down.

The server is a subprocess on a free port; executions are counted in its SQLite database.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`tiercel server` on a free port over *home*; stopped (or SIGKILLed) by its own pid."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Server:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", "server", "--home", str(self.home),
                                          "--port", str(self.port)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server did not start:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def deploy(self, source: str) -> None:
        r = httpx.post(f"{self.url}/api/v1/flows", content=source, headers={"Content-Type": "application/x-yaml"}, timeout=30)
        assert r.status_code == 200, r.text


def _triggered(home: Path, flow_id: str) -> list[dict]:
    with sqlite3.connect(f"file:{home / 'tiercel.db'}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute('SELECT "trigger" FROM executions WHERE flow_id = ?', (flow_id,)).fetchall()
    return [json.loads(r[0])["variables"] for r in rows]


def _wait_count(home: Path, flow_id: str, want: int, timeout: float, server: Server) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = _triggered(home, flow_id)
        if len(found) >= want or time.monotonic() > deadline:
            return found
        assert server.proc.poll() is None, server.log.read_text()[-3000:]
        time.sleep(0.1)


def _flow(flow_id: str, url: str, key: str) -> str:
    return f"""
id: {flow_id}
namespace: e2e.redis
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value.n }}}}"
triggers:
  - id: items
    type: redis.RealtimeTrigger
    url: "{url}"
    key: {key}
    serdeType: JSON
"""


def _push(url: str, key: str, numbers: range) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.rpush(key, *[json.dumps({"n": n}) for n in numbers])
    finally:
        client.close()


def test_thousand_list_items_exactly_once_across_a_sigkill(redis_url, tmp_path):
    key, flow_id = f"e2e-{uuid.uuid4().hex[:8]}", "thousand"
    home = tmp_path / "home"
    server = Server(home).start()
    try:
        server.deploy(_flow(flow_id, redis_url, key))
        _push(redis_url, key, range(1000))
        _wait_count(home, flow_id, 250, 60, server)
        server.stop(signal.SIGKILL)  # in the middle: one item may sit in the processing list
        killed_at = len(_triggered(home, flow_id))
        assert killed_at < 1000, "consumption ended before the kill: nothing was tested"
        server = Server(home).start()
        _wait_count(home, flow_id, 1000, 120, server)
        time.sleep(1.0)
        found = _triggered(home, flow_id)
    finally:
        server.stop()
    numbers = sorted(v["value"]["n"] for v in found)
    assert numbers == list(range(1000)), f"{len(numbers)} executions, {len(set(numbers))} distinct (killed at {killed_at})"


def test_thousand_stream_entries_exactly_once_across_a_sigkill(redis_url, tmp_path):
    """A stream read in a consumer group: after the kill, the restarted server re-reads its own pending entries."""
    import redis

    key, flow_id = f"e2e-{uuid.uuid4().hex[:8]}", "stream"
    source = _flow(flow_id, redis_url, key) + "    source: STREAM\n    startId: '0'\n"
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    for n in range(1000):
        pipe.xadd(key, {"n": json.dumps(n)})
    pipe.execute()
    home = tmp_path / "home"
    server = Server(home).start()
    try:
        server.deploy(source)
        _wait_count(home, flow_id, 250, 60, server)
        server.stop(signal.SIGKILL)  # read but unacknowledged entries stay pending for this consumer
        killed_at = len(_triggered(home, flow_id))
        assert killed_at < 1000, "consumption ended before the kill: nothing was tested"
        server = Server(home).start()
        _wait_count(home, flow_id, 1000, 120, server)
        time.sleep(1.0)
        found = _triggered(home, flow_id)
        assert client.xpending(key, "tiercel")["pending"] == 0
    finally:
        server.stop()
        client.close()
    numbers = sorted(v["value"]["n"] for v in found)
    assert numbers == list(range(1000)), f"{len(numbers)} executions, {len(set(numbers))} distinct (killed at {killed_at})"


def test_server_down_at_start_then_up_then_restarted(tmp_path):
    """The trigger logs a clear error naming the server, backs off, and resumes when it is back."""
    import shutil

    from tiercel.testing import services

    binary = shutil.which("redis-server")
    if binary is None:
        services.require("Redis (redis-server binary)", "apt-get install redis-server")
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                services._redis_probe(url)
                return proc
            except (OSError, ValueError):
                assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
                time.sleep(0.05)

    home, flow_id = tmp_path / "home", "down"
    server = Server(home).start()
    proc = None
    try:
        server.deploy(_flow(flow_id, url, "jobs"))
        deadline = time.monotonic() + 15
        while f"Redis at {url} is unreachable" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.1)
        proc = start()
        _push(url, "jobs", range(5))
        assert len(_wait_count(home, flow_id, 5, 30, server)) == 5  # resumed after the backoff
        proc.terminate()
        proc.wait(10)
        time.sleep(1.0)
        proc = start()
        _push(url, "jobs", range(100, 105))
        found = _wait_count(home, flow_id, 10, 60, server)
        assert sorted(v["value"]["n"] for v in found) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
        assert server.log.read_text().count(f"Redis at {url} is unreachable") < 12  # backoff: not one line per attempt
        assert server.proc.poll() is None
    finally:
        server.stop()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)
