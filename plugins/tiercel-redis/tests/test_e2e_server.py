"""End to end through a running `tiercel server`: 1,000 items, a SIGKILL in the middle, a broker that is down.

The server is a subprocess on a free port; executions are counted in its SQLite database.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid

import pytest

from tiercel.testing.harness import TiercelServer, triggered, wait_triggered
from tiercel.testing.services import free_port

pytestmark = pytest.mark.slow


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
    server = TiercelServer(home).start()
    try:
        server.deploy(_flow(flow_id, redis_url, key))
        # two halves with the kill between, so it lands mid-stream however fast this machine consumes
        _push(redis_url, key, range(500))
        wait_triggered(home, flow_id, 100, 60, server, interval=0.01)
        server.stop(signal.SIGKILL)  # in the middle: one item may sit in the processing list
        killed_at = len(triggered(home, flow_id))
        assert 0 < killed_at <= 500
        _push(redis_url, key, range(500, 1000))  # arrives while the server is down
        server = TiercelServer(home).start()
        wait_triggered(home, flow_id, 1000, 120, server)
        time.sleep(1.0)
        found = triggered(home, flow_id)
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

    def add(numbers: range) -> None:
        pipe = client.pipeline(transaction=False)
        for n in numbers:
            pipe.xadd(key, {"n": json.dumps(n)})
        pipe.execute()

    add(range(500))  # two halves with the kill between, so it lands mid-stream however fast this machine reads
    home = tmp_path / "home"
    server = TiercelServer(home).start()
    try:
        server.deploy(source)
        wait_triggered(home, flow_id, 100, 60, server, interval=0.01)
        server.stop(signal.SIGKILL)  # read but unacknowledged entries stay pending for this consumer
        killed_at = len(triggered(home, flow_id))
        assert 0 < killed_at <= 500
        add(range(500, 1000))  # arrives while the server is down
        server = TiercelServer(home).start()
        wait_triggered(home, flow_id, 1000, 120, server)
        time.sleep(1.0)
        found = triggered(home, flow_id)
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
    port = free_port()
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
    server = TiercelServer(home).start()
    proc = None
    try:
        server.deploy(_flow(flow_id, url, "jobs"))
        deadline = time.monotonic() + 15
        while f"Redis at {url} is unreachable" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.1)
        proc = start()
        _push(url, "jobs", range(5))
        assert len(wait_triggered(home, flow_id, 5, 30, server)) == 5  # resumed after the backoff
        proc.terminate()
        proc.wait(10)
        time.sleep(1.0)
        proc = start()
        _push(url, "jobs", range(100, 105))
        found = wait_triggered(home, flow_id, 10, 60, server)
        assert sorted(v["value"]["n"] for v in found) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
        assert server.log.read_text().count(f"Redis at {url} is unreachable") < 12  # backoff: not one line per attempt
        assert server.proc.poll() is None
    finally:
        server.stop()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)
