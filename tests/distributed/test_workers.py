"""Real workers: executors only resolve flows, workers only run tasks; SIGKILL loses and doubles nothing."""

from __future__ import annotations

from collections import Counter

import pytest

pytestmark = pytest.mark.timeout(120)

CHAIN = """\
id: chain
namespace: dist.demo
tasks:
  - {id: a, type: core.Sleep, duration: PT0.6S}
  - {id: b, type: core.Sleep, duration: PT0.6S}
  - {id: c, type: core.Return, format: "done {{ outputs.b is defined }}"}
"""


def _one_success_each(attempts):
    """Every task run has exactly one SUCCESS attempt, and nothing but LOST attempts before it."""
    per_run = {}
    for ex, task, _attempt, state, _worker in attempts:
        per_run.setdefault((ex, task), []).append(state)
    for key, states in per_run.items():
        assert states.count("SUCCESS") == 1, (key, states)
        assert states[-1] == "SUCCESS" and set(states[:-1]) <= {"LOST"}, (key, states)
    return per_run


def test_a_worker_runs_the_tasks_an_executor_queues(cluster):
    cluster.webserver()
    executor = cluster.executor()
    worker = cluster.worker(concurrency=4)
    cluster.deploy("""\
id: chain
namespace: dist.demo
tasks:
  - {id: a, type: core.Return, format: "{{ 20 + 1 }}"}
  - {id: b, type: core.Sleep, duration: PT0.05S}
  - {id: c, type: core.Return, format: "done {{ outputs.a.value }}"}
""")
    ids = cluster.start("dist.demo", "chain", 3)
    assert set(cluster.wait_ended(ids).values()) == {"SUCCESS"}
    attempts = cluster.attempts(ids)
    _one_success_each(attempts)
    worker_id = cluster.process_id(worker)
    assert {a[4] for a in attempts} == {worker_id}, "every attempt ran on the worker"
    assert cluster.process_id(executor) not in {a[4] for a in attempts}
    assert cluster.db.one("SELECT COUNT(*) FROM jobs")[0] == 0
    assert cluster.db.one("SELECT COUNT(*) FROM results")[0] == 0
    with cluster.api() as api:
        ex = api.get(f"/api/v1/executions/{ids[0]}").json()
        assert ex["outputs"] == {} or ex["state"] == "SUCCESS"
        tr = [t for t in ex["taskRuns"] if t["taskId"] == "c"][0]
        assert tr["outputs"]["value"] == "done 21"


def test_sigkilled_worker_attempts_run_again_elsewhere_and_finished_tasks_never_rerun(cluster, d):
    cluster.webserver()
    cluster.executor()
    victim = cluster.worker(concurrency=4)
    cluster.deploy(CHAIN)
    ids = cluster.start("dist.demo", "chain", 4)
    victim_id = cluster.process_id(victim)
    # kill the worker mid-task: while it holds jobs of the second task (the first ones have finished)
    d.wait_for(lambda: cluster.db.one("SELECT COUNT(*) FROM jobs j JOIN task_runs t ON t.id = j.task_run_id "
                                      "WHERE j.worker = ? AND t.task_id = 'b'", (victim_id,))[0] >= 1, 20,
               "the victim running task b")
    cluster.kill(victim)
    survivor = cluster.worker(concurrency=4)
    assert set(cluster.wait_ended(ids, 30).values()) == {"SUCCESS"}
    attempts = cluster.attempts(ids)
    per_run = _one_success_each(attempts)
    assert all(states == ["SUCCESS"] for (ex, task), states in per_run.items() if task == "a"), \
        "a task that finished before the kill never runs again"
    lost = [a for a in attempts if a[3] == "LOST"]
    assert lost and {a[4] for a in lost} == {victim_id}
    assert {a[1] for a in lost} == {"b"}
    assert all(a[4] == cluster.process_id(survivor) for a in attempts if a[3] == "SUCCESS" and a[2] > 1)
    assert cluster.db.one("SELECT COUNT(*) FROM jobs")[0] == 0


def test_a_sigkilled_executor_executions_are_taken_over_without_rerunning_tasks(cluster, d):
    cluster.webserver()
    first = cluster.executor()
    cluster.worker(concurrency=8)
    cluster.deploy(CHAIN)
    ids = cluster.start("dist.demo", "chain", 4)
    first_id = cluster.process_id(first)
    d.wait_for(lambda: cluster.db.one("SELECT COUNT(*) FROM executions WHERE owner = ? AND state = 'RUNNING'",
                                      (first_id,))[0] == 4, 20, "the first executor running all four")
    d.wait_for(lambda: cluster.db.one("SELECT COUNT(*) FROM attempts WHERE state = 'SUCCESS'")[0] >= 2, 20,
               "some tasks done")
    cluster.kill(first)
    second = cluster.executor()
    assert set(cluster.wait_ended(ids, 30).values()) == {"SUCCESS"}
    attempts = cluster.attempts(ids)
    per_run = _one_success_each(attempts)
    assert all(states == ["SUCCESS"] for states in per_run.values()), "no task ran twice: jobs in flight survived"
    assert Counter(task for _ex, task in per_run) == {"a": 4, "b": 4, "c": 4}
    assert "recovering execution" in cluster.log_of(second)


ROUTED = """\
id: routed
namespace: dist.demo
tasks:
  - {id: light, type: core.Log, message: anywhere}
  - {id: heavy, type: core.Log, message: on the heavy queue, queue: heavy}
  - id: kestra
    type: io.kestra.plugin.core.log.Log
    message: Kestra's worker group
    workerGroup: {key: heavy}
"""


def test_tasks_go_to_the_workers_of_their_queue(cluster):
    cluster.webserver()
    cluster.executor()
    default = cluster.worker(concurrency=2)
    heavy = cluster.worker(concurrency=2, queues=("heavy",))
    cluster.deploy(ROUTED)
    ids = cluster.start("dist.demo", "routed", 2)
    assert set(cluster.wait_ended(ids).values()) == {"SUCCESS"}
    where = {(task, worker) for _ex, task, _n, _s, worker in cluster.attempts(ids)}
    assert where == {("light", cluster.process_id(default)), ("heavy", cluster.process_id(heavy)),
                     ("kestra", cluster.process_id(heavy))}


def test_killing_an_execution_cancels_its_task_on_the_worker(cluster, d):
    cluster.webserver()
    cluster.executor()
    worker = cluster.worker(concurrency=2)
    cluster.deploy("""\
id: long
namespace: dist.demo
tasks:
  - {id: nap, type: core.Sleep, duration: PT60S}
""")
    [execution_id] = cluster.start("dist.demo", "long")
    d.wait_for(lambda: cluster.db.one("SELECT COUNT(*) FROM jobs WHERE worker = ?",
                                      (cluster.process_id(worker),))[0] == 1, 20, "the worker running the task")
    with cluster.api() as api:
        assert api.delete(f"/api/v1/executions/{execution_id}/kill").status_code in (200, 202, 204)
    assert cluster.wait_ended([execution_id], 20) == {execution_id: "KILLED"}
    assert [a[3] for a in cluster.attempts([execution_id])] == ["KILLED"]
    assert cluster.db.one("SELECT COUNT(*) FROM jobs")[0] == 0
