"""Namespace quotas across processes (queued executions start in order) and `tiercel cluster status`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(120)

SLOW = """\
id: slow
namespace: dist.quota.etl
tasks:
  - {id: work, type: core.Sleep, duration: PT0.4S}
"""


def test_a_namespace_quota_holds_across_executors_and_starts_queued_executions_in_order(make_cluster):
    cluster = make_cluster({"TIERCEL_NAMESPACE_QUOTAS": "dist.quota=2"})
    cluster.webserver()
    cluster.executor()
    cluster.executor()
    cluster.worker(concurrency=4)
    cluster.worker(concurrency=4)
    cluster.deploy(SLOW)
    ids = cluster.start("dist.quota.etl", "slow", 6)
    states = cluster.states(ids)
    assert list(states.values()).count("QUEUED") >= 3, states
    assert set(cluster.wait_ended(ids, 40).values()) == {"SUCCESS"}
    rows = cluster.db.query("SELECT id, created_at, started_at, ended_at FROM executions WHERE namespace = "
                            "'dist.quota.etl' ORDER BY created_at")
    assert [r[0] for r in rows] == ids
    started = [r[2] for r in rows]
    # Two promoted in the same turn start on two executors, so their start times may swap by a loop turn;
    # a later execution must never start a whole task (0.4 s) before an earlier one: that would be a jump.
    jumps = [(i, j) for i in range(len(started)) for j in range(i + 1, len(started)) if started[j] < started[i] - 0.3]
    assert not jumps, f"queued executions start in creation order: {started}"
    for _id, _created, start, _end in rows:  # at most 2 ran at any moment
        overlapping = [r for r in rows if r[2] <= start < r[3]]
        assert len(overlapping) <= 2, overlapping
    with cluster.api() as api:
        quotas = api.get("/api/v1/cluster").json()["quotas"]
    assert quotas == [{"namespace": "dist.quota", "limit": 2, "running": 0, "queued": 0}]


FAR = """\
id: far
namespace: dist.status
tasks:
  - {id: waits, type: core.Log, message: nobody listens to this queue, queue: nobody}
"""


def test_cluster_status_lists_processes_and_queue_depth(cluster, d):
    cluster.webserver()
    cluster.executor()
    worker = cluster.worker(concurrency=3, queues=("q1",))
    cluster.deploy(FAR)
    cluster.start("dist.status", "far")
    d.wait_for(lambda: cluster.db.one("SELECT COUNT(*) FROM jobs WHERE queue = 'nobody'")[0] == 1, 20, "a job queued")
    cli = [sys.executable, "-m", "tiercel.cli.main", "cluster", "status", "--home", str(cluster.home),
           "--db", cluster.url]
    data = json.loads(subprocess.run([*cli, "--json"], capture_output=True, text=True, check=True).stdout)
    kinds = sorted(p["kind"] for p in data["processes"])
    assert kinds == ["api", "executor", "worker"]
    w = next(p for p in data["processes"] if p["kind"] == "worker")
    assert (w["pid"], w["slots"], w["busy"], w["queues"], w["alive"]) == (worker.proc.pid, 3, 0, ["q1"], True)
    assert w["host"] and w["version"] and w["startedAt"] and w["lastHeartbeat"]
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["nobody"]["waiting"] == 1 and queues["nobody"]["workers"] == 0
    assert queues["nobody"]["oldestWaitingSeconds"] >= 0
    assert queues["q1"] == {"queue": "q1", "waiting": 0, "running": 0, "oldestWaitingSeconds": None, "workers": 1}
    text = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
    assert "PROCESSES" in text and "QUEUES" in text and "0/3" in text and "nobody" in text
    with cluster.api() as api:
        r = api.get("/api/v1/cluster")
        assert r.status_code == 200
        assert {q["queue"] for q in r.json()["queues"]} == {"nobody", "q1"}
