"""The scheduler in-process with a test clock: DST, missed dates, lateMaximumDelay, backfill pacing."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tiercel.core.triggers import Schedule
from tiercel.engine.runtime import Runtime
from tiercel.engine.scheduler import Scheduler

PARIS = ZoneInfo("Europe/Paris")


def ts(text: str, tz=UTC) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def local(t: float, tz=PARIS) -> str:
    return datetime.fromtimestamp(t, tz).isoformat()


def fires(trigger: Schedule, start: float, n: int) -> list[str]:
    out, t = [], start
    for _ in range(n):
        t = trigger.next_fire(t)
        out.append(local(t, trigger.tzinfo()))
    return out


def test_daily_cron_across_dst_changes():
    daily = Schedule(id="d", cron="30 2 * * *", timezone="Europe/Paris")
    # 2026-03-29: 02:00 → 03:00 in Paris, 02:30 does not exist: it fires at 03:30 (same offset after the jump)
    assert fires(daily, ts("2026-03-27T12:00:00"), 3) == [
        "2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"]
    # 2026-10-25: 03:00 → 02:00, 02:30 happens twice: it fires once
    assert fires(daily, ts("2026-10-23T12:00:00"), 3) == [
        "2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    nine = Schedule(id="n", cron="0 9 * * *", timezone="America/New_York")
    assert [f[11:] for f in fires(nine, ts("2026-03-06T00:00:00"), 4)] == ["09:00:00-05:00", "09:00:00-05:00",
                                                                          "09:00:00-04:00", "09:00:00-04:00"]
    hourly = Schedule(id="h", cron="@hourly", timezone="Europe/Paris")
    assert fires(hourly, ts("2026-03-29T00:30:00"), 2) == ["2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"]
    assert daily.previous_fire(daily.next_fire(ts("2026-03-27T12:00:00"))) < daily.next_fire(ts("2026-03-27T12:00:00"))


def test_with_seconds_and_nicknames():
    every2 = Schedule(id="s", cron="*/2 * * * * *", withSeconds=True, timezone="UTC")
    assert fires(every2, ts("2026-01-01T00:00:00"), 3) == [
        "2026-01-01T00:00:02+00:00", "2026-01-01T00:00:04+00:00", "2026-01-01T00:00:06+00:00"]
    weekly = Schedule(id="w", cron="@weekly", timezone="UTC")
    assert fires(weekly, ts("2026-01-01T00:00:00"), 1) == ["2026-01-04T00:00:00+00:00"]  # Sunday midnight


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def flow(policy: str = "ALL", extra: str = "", cron: str = "*/10 * * * * *", concurrency: str = "") -> str:
    return f"""\
id: every10_{policy.lower()}
namespace: demo.clock
{concurrency}
tasks:
  - {{id: log, type: core.Log, message: "{{{{ trigger.date }}}}"}}
triggers:
  - id: tick
    type: core.Schedule
    cron: "{cron}"
    withSeconds: true
    timezone: UTC
    recoverMissedSchedules: {policy}
{extra}"""


@pytest.fixture
def rt(tmp_path):
    runtime = Runtime(tmp_path / "home")
    yield runtime
    runtime.close()


def deploy(rt, source: str) -> None:
    from tiercel.flow import load_flow

    f = load_flow(source)
    rt.stores.flows.deploy(f.namespace, f.id, source)


def dates(rt, flow_id: str) -> list[str]:
    return [t["trigger"]["variables"]["date"][11:19] for t in rt.stores.executions.triggers_of(flow_id)]


@pytest.mark.parametrize("policy, expected", [
    ("ALL", ["00:00:10", "00:00:20", "00:00:30", "00:00:40", "00:00:50", "00:01:00"]),
    ("LAST", ["00:00:10", "00:00:50", "00:01:00"]),
    ("NONE", ["00:00:10", "00:01:00"]),
])
def test_missed_dates_after_downtime_follow_the_policy(rt, policy, expected):
    clock = Clock(ts("2026-01-01T00:00:05"))
    deploy(rt, flow(policy))
    Scheduler(rt, clock=clock).tick()            # registers the trigger: next date 00:00:10
    clock.now = ts("2026-01-01T00:00:10.2")
    Scheduler(rt, clock=clock).tick()
    clock.now = ts("2026-01-01T00:00:55")         # down from 00:00:10 to 00:00:55: 20, 30, 40, 50 missed
    restarted = Scheduler(rt, clock=clock)
    restarted.tick()
    clock.now = ts("2026-01-01T00:01:00.1")
    restarted.tick()
    assert dates(rt, f"every10_{policy.lower()}") == expected
    restarted.tick()
    assert len(dates(rt, f"every10_{policy.lower()}")) == len(expected)  # never twice


@pytest.mark.parametrize("policy, expected", [
    ("ALL", ["00:00:10", "00:00:20", "00:00:30", "00:00:40", "00:00:50"]),
    ("LAST", ["00:00:10", "00:00:40", "00:00:50"]),
    ("NONE", ["00:00:10", "00:00:50"]),
])
def test_missed_dates_after_disable_then_enable(rt, policy, expected):
    clock = Clock(ts("2026-01-01T00:00:05"))
    deploy(rt, flow(policy))
    scheduler = Scheduler(rt, clock=clock)
    scheduler.tick()
    clock.now = ts("2026-01-01T00:00:10.1")
    scheduler.tick()
    store = rt.stores.triggers
    store.set_disabled("demo.clock", f"every10_{policy.lower()}", "tick", "core.Schedule", True)
    for second in (15, 25, 35, 45):
        clock.now = ts(f"2026-01-01T00:00:{second}")
        scheduler.tick()
    store.set_disabled("demo.clock", f"every10_{policy.lower()}", "tick", "core.Schedule", False)
    clock.now = ts("2026-01-01T00:00:46")
    scheduler.tick()
    clock.now = ts("2026-01-01T00:00:50.1")
    scheduler.tick()
    assert dates(rt, f"every10_{policy.lower()}") == expected


def test_late_maximum_delay_skips_late_dates(rt):
    clock = Clock(ts("2026-01-01T00:00:05"))
    deploy(rt, flow("ALL", extra="    lateMaximumDelay: PT15S\n"))
    Scheduler(rt, clock=clock).tick()
    clock.now = ts("2026-01-01T00:00:45")  # 10 and 20 are more than 15 s late, 30 and 40 are not
    Scheduler(rt, clock=clock).tick()
    assert dates(rt, "every10_all") == ["00:00:30", "00:00:40"]


def test_backfill_fires_in_order_within_the_concurrency_limit(rt):
    from tiercel.engine.scheduler import Scheduler

    clock = Clock(ts("2026-01-01T01:00:00"))
    deploy(rt, flow("NONE", cron="0 */10 * * * *", concurrency="concurrency: {limit: 2}"))
    scheduler = Scheduler(rt, clock=clock)
    scheduler.tick()
    d = scheduler.index.get("demo.clock", "every10_none")
    trigger = d.flow.triggers[0]
    state = scheduler.backfill(d, trigger, ts("2026-01-01T00:00:00"), ts("2026-01-01T00:50:00"), {}, {"run": "bf"})
    assert state["total"] == 6
    scheduler.tick()
    assert dates(rt, "every10_none") == ["00:00:00", "00:10:00"]  # two at a time: the flow's limit
    scheduler.set_backfill(d, trigger, "pause")
    rt.db.execute("UPDATE executions SET state = 'SUCCESS' WHERE flow_id = 'every10_none'")
    scheduler.tick()
    assert len(dates(rt, "every10_none")) == 2
    scheduler.set_backfill(d, trigger, "unpause")
    for _ in range(3):
        scheduler.tick()
        rt.db.execute("UPDATE executions SET state = 'SUCCESS' WHERE flow_id = 'every10_none'")
    assert dates(rt, "every10_none") == ["00:00:00", "00:10:00", "00:20:00", "00:30:00", "00:40:00", "00:50:00"]
    labels = rt.db.query("SELECT labels FROM executions WHERE flow_id = 'every10_none'")
    assert all('"system.backfill":"true"' in r[0] and '"run":"bf"' in r[0] for r in labels)
    assert "backfill" not in scheduler.store.get("demo.clock", "every10_none", "tick")["state"]
    # a second backfill over the same dates creates nothing: each date fires once
    scheduler.backfill(d, trigger, ts("2026-01-01T00:00:00"), ts("2026-01-01T00:50:00"), {}, {})
    scheduler.tick()
    assert len(dates(rt, "every10_none")) == 6


def test_schedule_conditions_skip_dates_and_stop_after_disables(rt):
    from tiercel.model import Execution

    clock = Clock(ts("2026-01-02T23:00:00"))  # a Friday
    deploy(rt, """\
id: weekdays
namespace: demo.clock
tasks:
  - {id: log, type: core.Log, message: "{{ trigger.date }}"}
triggers:
  - id: daily
    type: core.Schedule
    cron: "0 0 * * *"
    timezone: UTC
    stopAfter: [FAILED]
    conditions:
      - type: io.kestra.plugin.core.condition.Not
        conditions: [{type: Weekend}]
""")
    scheduler = Scheduler(rt, clock=clock)
    scheduler.tick()
    for day in ("03", "04", "05"):  # Saturday and Sunday are skipped, Monday fires
        clock.now = ts(f"2026-01-{day}T00:00:00.1")
        scheduler.tick()
    assert [d[:10] for d in _full_dates(rt, "weekdays")] == ["2026-01-05"]
    assert scheduler.store.get("demo.clock", "weekdays", "daily")["next_at"] == ts("2026-01-06T00:00:00")
    ended = Execution(id="x", namespace="demo.clock", flow_id="weekdays", flow_hash="h", state="FAILED", created_at=0.0,
                      trigger={"id": "daily", "type": "core.Schedule", "variables": {}})
    scheduler.on_end(ended)
    assert scheduler.store.get("demo.clock", "weekdays", "daily")["disabled"] is True


def _full_dates(rt, flow_id: str) -> list[str]:
    return [t["trigger"]["variables"]["date"] for t in rt.stores.executions.triggers_of(flow_id)]


def test_kestras_older_backfill_property_fires_its_dates_once(rt):
    from tiercel.engine.scheduler import Scheduler

    clock = Clock(ts("2026-01-01T00:35:00"))
    deploy(rt, flow("NONE", cron="0 */10 * * * *", extra="    backfill: {start: '2026-01-01T00:00:00Z'}\n"))
    scheduler = Scheduler(rt, clock=clock)
    for _ in range(3):
        scheduler.tick()
    assert dates(rt, "every10_none") == ["00:00:00", "00:10:00", "00:20:00", "00:30:00"]
    scheduler.tick()
    assert len(dates(rt, "every10_none")) == 4
