"""Schedules on a real server: live ticks, a crash and restart mid-run, two schedulers on one database."""

from __future__ import annotations

import collections
import signal
import time
from datetime import datetime

import pytest

EVERY_SECOND = """\
id: ticker
namespace: demo.sched
inputs:
  - {id: note, type: STRING, defaults: none}
tasks:
  - {id: work, type: core.Sleep, duration: "PT@SLEEP@S"}
  - {id: log, type: core.Log, message: "{{ trigger.date }} {{ inputs.note }}"}
triggers:
  - id: tick
    type: core.Schedule
    cron: "* * * * * *"
    withSeconds: true
    timezone: Europe/Paris
    inputs: {note: "from {{ trigger.date }}"}
"""


def tick_dates(client, h) -> list[str]:
    return [e["trigger"]["variables"]["date"] for e in h.executions(client, "ticker")]


def assert_each_second_once(dates: list[str]) -> None:
    counts = collections.Counter(dates)
    assert [d for d, n in counts.items() if n > 1] == [], "a tick fired twice"
    seconds = sorted(int(datetime.fromisoformat(d).timestamp()) for d in counts)
    assert seconds == list(range(seconds[0], seconds[-1] + 1)), "a tick is missing"


def test_schedule_fires_every_second_with_trigger_variables(api, h):
    h.deploy(api, EVERY_SECOND.replace("@SLEEP@", "0.01"))
    rows = h.wait_for(lambda: (r := h.executions(api, "ticker", state="SUCCESS")) and len(r) >= 3 and r)
    ex = rows[-1]
    variables = ex["trigger"]["variables"]
    date = datetime.fromisoformat(variables["date"])
    assert date.utcoffset() is not None and date.microsecond == 0
    assert datetime.fromisoformat(variables["next"]).timestamp() - date.timestamp() == 1
    assert date.timestamp() - datetime.fromisoformat(variables["previous"]).timestamp() == 1
    assert ex["inputs"] == {"note": f"from {variables['date']}"} and ex["trigger"]["type"] == "core.Schedule"
    listed = api.get("/api/v1/triggers/demo.sched/ticker").json()[0]
    assert listed["nextExecutionDate"] > variables["date"] and listed["executionId"]
    assert api.post("/api/v1/triggers/demo.sched/ticker/tick/disable").json()["nextExecutionDate"]
    time.sleep(0.3)
    count = len(h.executions(api, "ticker"))
    time.sleep(1.5)
    assert len(h.executions(api, "ticker")) == count  # disabled: nothing fires
    assert_each_second_once(tick_dates(api, h))


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_restart_mid_run_loses_nothing_and_fires_no_tick_twice(tmp_path, h, how):
    server = h.ServerProcess(tmp_path / "home").start()
    with server.client() as api:
        h.deploy(api, EVERY_SECOND.replace("@SLEEP@", "0.6"))
        h.deploy(api, """\
id: long
namespace: demo.sched
concurrency: {limit: 1}
tasks:
  - {id: a, type: core.Sleep, duration: PT1S}
  - {id: b, type: core.Log, message: done}
""")
        long_ids = [api.post("/api/v1/executions/demo.sched/long").json()["id"] for _ in range(3)]
        assert len(h.executions(api, "long", state="QUEUED")) == 2
        h.wait_for(lambda: len(h.executions(api, "ticker", state="RUNNING")) >= 1)
        time.sleep(0.5)
    server.stop(how)
    time.sleep(1.5)  # down for a while: the ticks meanwhile are missed (recoverMissedSchedules ALL by default)
    server = h.ServerProcess(tmp_path / "home", port=server.port).start()
    try:
        with server.client() as api:
            for execution_id in long_ids:
                h.wait_for(lambda eid=execution_id: api.get(f"/api/v1/executions/{eid}").json()["state"] == "SUCCESS", 20)
            spans = sorted((e["startDate"], e["endDate"]) for e in h.executions(api, "long"))
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "queued executions overlapped"
            time.sleep(1.5)
            api.post("/api/v1/triggers/demo.sched/ticker/tick/disable")
            h.wait_for(lambda: not [e for e in h.executions(api, "ticker") if e["state"] != "SUCCESS"], 20)
            assert_each_second_once(tick_dates(api, h))
            assert len(tick_dates(api, h)) >= 4
    finally:
        server.stop()


@pytest.mark.slow
def test_two_schedulers_on_one_database_fire_each_tick_once(tmp_path, h):
    home = tmp_path / "home"
    first = h.ServerProcess(home).start()
    second = h.ServerProcess(home).start()
    try:
        with first.client() as api:
            h.deploy(api, EVERY_SECOND.replace("@SLEEP@", "0.01"))
            time.sleep(4)
            api.post("/api/v1/triggers/demo.sched/ticker/tick/disable")
            time.sleep(0.5)
            h.wait_for(lambda: not [e for e in h.executions(api, "ticker") if e["state"] != "SUCCESS"], 20)
            dates = tick_dates(api, h)
        assert len(dates) >= 3
        assert_each_second_once(dates)
    finally:
        first.stop()
        second.stop()


@pytest.mark.slow
def test_an_executor_process_finishes_what_a_crashed_server_left(tmp_path, h):
    """`tiercel executor` (no API) takes over executions whose process died; `tiercel webserver` shows them."""
    home = tmp_path / "home"
    server = h.ServerProcess(home).start()
    with server.client() as api:
        h.deploy(api, """\
id: long
namespace: demo.sched
tasks:
  - {id: a, type: core.Sleep, duration: PT1S}
  - {id: b, type: core.Log, message: done}
""")
        ids = [api.post("/api/v1/executions/demo.sched/long").json()["id"] for _ in range(3)]
        h.wait_for(lambda: len(h.executions(api, "long", state="RUNNING")) == 3)
    server.stop(signal.SIGKILL)
    executor = h.ServerProcess(home, command="executor").start()
    worker = h.ServerProcess(home, command="worker").start()  # the executor only queues tasks: a worker runs them
    web = h.ServerProcess(home, command="webserver").start()
    try:
        with web.client() as api:
            for execution_id in ids:
                h.wait_for(lambda eid=execution_id: api.get(f"/api/v1/executions/{eid}").json()["state"] == "SUCCESS", 20)
        assert "recovering execution" in executor.log.read_text()
    finally:
        web.stop()
        worker.stop()
        executor.stop()
