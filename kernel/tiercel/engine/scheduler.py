"""The scheduler: ticks and backfills of schedule triggers, execution triggers, shared trigger helpers.

Every trigger is reached through its kind (``tiercel.ScheduleTrigger``, ``ExecutionTrigger``,
``WebhookTrigger``, ``PollingTrigger``, ``RealtimeTrigger``), never by type name, so a plugin's
trigger of a kind works like the core one.

Exactly once: a tick is claimed by a row in ``trigger_ticks`` (unique per trigger and
date) inserted in the same transaction that creates its execution, so two schedulers on
one database, or a restart in the middle of a tick, never fire a date twice and leave no
lock behind. A flow trigger dedupes on the upstream execution id (``executions.dedupe_key``).

Cron dates are computed on the wall clock of the trigger's time zone: a time skipped by a
DST jump fires at the same offset after the jump (02:30 → 03:30), a time that occurs twice
fires once, the first time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tiercel.api import ExecutionTrigger, ScheduleTrigger, Trigger
from tiercel.engine.delivery import start_execution as _start
from tiercel.model import TERMINAL, Execution

log = logging.getLogger("tiercel.scheduler")

#: A tick at most this late (seconds) when first seen counts as on time, not missed.
GRACE = 1.0
#: Most ticks fired per trigger in one pass (a long downtime with ALL is worked off over passes).
BATCH = 200
#: Seconds one scheduler pass may take before it lets the event loop serve the rest.
PASS_BUDGET = 0.02
#: The same on a server database, where every statement is a network round trip.
PASS_BUDGET_REMOTE = 0.1
_UTC = UTC


# --- schedule dates -----------------------------------------------------------------------


def iso_in(ts: float | None, tz: Any) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz).isoformat()


def tick_key(ts: float) -> str:
    """The tick's unique key: its instant in UTC, ISO-8601 with milliseconds."""
    return datetime.fromtimestamp(ts, _UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def schedule_variables(trigger: ScheduleTrigger, ts: float) -> dict[str, Any]:
    tz = trigger.zone()
    return {"date": iso_in(ts, tz), "next": iso_in(trigger.next_fire(ts), tz),
            "previous": iso_in(trigger.previous_fire(ts), tz)}


# --- deployed flows ---------------------------------------------------------------------

@dataclass
class Deployed:
    namespace: str
    id: str
    revision: int
    hash: str
    flow: Any


class FlowIndex:
    """The latest revision of every deployed flow, each source parsed once."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.store = rt.stores.triggers
        self._signature: tuple[Any, ...] | None = None
        self._flows: dict[tuple[str, str], Deployed] = {}
        self._parsed: dict[str, Any] = {}
        self._broken: set[str] = set()
        self.version = 0

    def refresh(self, force: bool = False) -> bool:
        """Reload when flows changed in the database (by this process or another); True if so."""
        signature = self.rt.stores.flows.signature()
        if signature == self._signature and not force:
            return False
        from tiercel.flow import load_flow

        flows: dict[tuple[str, str], Deployed] = {}
        for row in self.rt.stores.flows.list():
            flow = self._parsed.get(row["hash"])
            if flow is None:
                if row["hash"] in self._broken:
                    continue
                try:
                    flow = load_flow(row["source"], None, registry=self.rt.registry)
                except Exception as exc:  # e.g. a plugin uninstalled since the deploy
                    self._broken.add(row["hash"])
                    log.error("flow %s.%s (revision %s) cannot be loaded, its triggers are inactive: %s",
                              row["namespace"], row["id"], row["revision"], exc)
                    continue
                self._parsed[row["hash"]] = flow
            flows[(row["namespace"], row["id"])] = Deployed(row["namespace"], row["id"], row["revision"], row["hash"], flow)
        self._flows = flows
        self._signature = signature
        self.version += 1
        return True

    def remember(self, flow: Any) -> None:
        """Keep a flow parsed elsewhere (off the event loop, by the API) so a refresh does not parse it again."""
        from tiercel.backend.flows import source_hash

        if flow.source is not None:
            self._parsed[source_hash(flow.source)] = flow

    def get(self, namespace: str, flow_id: str) -> Deployed | None:
        return self._flows.get((namespace, flow_id))

    def all(self) -> list[Deployed]:
        return list(self._flows.values())

    def triggers(self, kind: type[Trigger]) -> list[tuple[Deployed, Any]]:
        """Every (flow, trigger) whose trigger is of *kind* (a ScheduleTrigger, an ExecutionTrigger…)."""
        return [(d, t) for d in self._flows.values() for t in d.flow.triggers if isinstance(t, kind)]


# --- starting an execution from a trigger ---------------------------------------------------

def start_execution(rt: Any, d: Deployed, trigger: Any, variables: dict[str, Any], key: str | None = None,
                    inputs: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
                    execution_id: str | None = None, extra: dict[str, Any] | None = None) -> Execution | None:
    """:func:`tiercel.engine.delivery.start_execution` for a deployed flow (its revision recorded)."""
    return _start(rt, d.flow, trigger, variables, key=key, inputs=inputs, labels=labels, revision=d.revision,
                  execution_id=execution_id, extra=extra)


def trigger_disabled(d: Deployed, trigger: Any, row: dict[str, Any] | None) -> bool:
    return bool(getattr(d.flow, "disabled", False) or trigger.disabled or (row and row.get("disabled")))


# --- conditions (Kestra's vocabulary) --------------------------------------------------------

_DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


def condition_type(cond: dict[str, Any]) -> str:
    name = str(cond.get("type", "")).rsplit(".", 1)[-1]
    if name == "MultipleCondition" or not name.endswith("Condition"):
        return name
    return name[:-len("Condition")]  # Kestra's older names: ExecutionStatusCondition


class Conditions:
    """Evaluates trigger ``conditions``; MultipleCondition is stateful and handled by the scheduler."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt

    def check_all(self, conditions: list[dict[str, Any]], variables: dict[str, Any], upstream: Execution | None = None,
                  tz: Any = None) -> bool:
        return all(self.check(c, variables, upstream, tz) for c in conditions
                   if condition_type(c) != "MultipleCondition")

    def check(self, cond: dict[str, Any], variables: dict[str, Any], upstream: Execution | None, tz: Any = None) -> bool:
        kind = condition_type(cond)
        method = getattr(self, f"_{kind}", None)
        if method is None:
            raise ValueError(f"unknown condition type `{cond.get('type')}`")
        return bool(method(cond, variables, upstream, tz))

    # upstream execution tests
    def _ExecutionFlow(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        return up is not None and up.namespace == c.get("namespace") and up.flow_id == c.get("flowId")

    def _ExecutionNamespace(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        if up is None:
            return False
        ns, how = str(c.get("namespace", "")), str(c.get("comparison") or ("PREFIX" if c.get("prefix") else "EQUALS"))
        return {"EQUALS": up.namespace == ns, "PREFIX": up.namespace.startswith(ns),
                "SUFFIX": up.namespace.endswith(ns)}.get(how.upper(), False)

    def _ExecutionStatus(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        if up is None:
            return False
        return (not c.get("in") or up.state in c["in"]) and up.state not in (c.get("notIn") or [])

    def _ExecutionLabels(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        wanted = c.get("labels") or {}
        if isinstance(wanted, list):
            wanted = {str(i.get("key")): str(i.get("value")) for i in wanted if isinstance(i, dict)}
        return up is not None and all(str(up.labels.get(k)) == str(val) for k, val in wanted.items())

    def _ExecutionOutputs(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        return self._expression(c.get("expression"), v)

    def _Expression(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        return self._expression(c.get("expression"), v)

    def _expression(self, expr: Any, v: dict[str, Any]) -> bool:
        from tiercel.expr import truthy

        if expr is None:
            raise ValueError("an Expression condition needs `expression`")
        text = str(expr) if "{{" in str(expr) else "{{ " + str(expr) + " }}"
        return truthy(self.rt.renderer.render(text, {"trigger": v, **v.get("_context", {})}))

    # combinators
    def _Not(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        return not any(self.check(x, v, up, tz) for x in c.get("conditions") or [])

    def _Or(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        return any(self.check(x, v, up, tz) for x in c.get("conditions") or [])

    # dates
    def _date(self, c: dict[str, Any], v: dict[str, Any], tz: Any) -> datetime:
        raw = c.get("date")
        if raw is not None:
            raw = self.rt.renderer.render(raw, {"trigger": v}) if "{{" in str(raw) else raw
        raw = raw or v.get("date")
        if raw:
            value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            return value if value.tzinfo else value.replace(tzinfo=tz)
        return datetime.now(tz) if tz else datetime.now().astimezone()

    def _DayWeek(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        return _DAYS[self._date(c, v, tz).weekday()] == str(c.get("dayOfWeek", "")).upper()

    def _Weekend(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        return self._date(c, v, tz).weekday() >= 5

    def _DayWeekInMonth(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        d = self._date(c, v, tz)
        if _DAYS[d.weekday()] != str(c.get("dayOfWeek", "")).upper():
            return False
        which = str(c.get("dayInMonth", "FIRST")).upper()
        nth = (d.day - 1) // 7
        if which == "LAST":
            return (d + timedelta(days=7)).month != d.month
        return nth == {"FIRST": 0, "SECOND": 1, "THIRD": 2, "FOURTH": 3}.get(which, -1)

    def _PublicHoliday(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        """A public holiday of ``country`` (ISO code; ``subDivision`` for a region), from the `holidays` library."""
        import holidays

        country = c.get("country")
        if not country:
            raise ValueError("a PublicHoliday condition needs `country` (an ISO code such as FR or US)")
        try:
            calendar = holidays.country_holidays(str(country).upper(), subdiv=c.get("subDivision"))
        except NotImplementedError:
            raise ValueError(f"PublicHoliday: unknown country `{country}`") from None
        return self._date(c, v, tz).date() in calendar

    def _HasRetryAttempt(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        """The upstream execution retried a task, with an attempt in ``in`` (and none of ``notIn``) states."""
        if up is None:
            return False
        wanted, unwanted = c.get("in") or [], c.get("notIn") or []
        states = {str(a.state) for tr in up.task_runs.values() if len(tr.attempts) > 1 for a in tr.attempts}
        return bool(states) and (not wanted or bool(states & set(wanted))) and not states & set(unwanted)

    def _TimeBetween(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        t = self._date(c, v, tz).timetz().replace(tzinfo=None)
        after = _time(c.get("after"))
        before = _time(c.get("before"))
        return (after is None or t >= after) and (before is None or t <= before)

    def _DateTimeBetween(self, c: dict[str, Any], v: dict[str, Any], up: Execution | None, tz: Any) -> bool:
        d = self._date(c, v, tz)
        after = _dt(c.get("after"), d.tzinfo)
        before = _dt(c.get("before"), d.tzinfo)
        return (after is None or d >= after) and (before is None or d <= before)


def _time(value: Any) -> Any:
    if value is None:
        return None
    from datetime import time as dtime

    text = re.sub(r"([+-]\d\d:?\d\d|Z)$", "", str(value))
    return dtime.fromisoformat(text)


def _dt(value: Any, tz: Any) -> datetime | None:
    if value is None:
        return None
    d = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return d if d.tzinfo else d.replace(tzinfo=tz)


def _secs(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)):
        return float(value)
    from tiercel.flow.inputs import parse_duration

    return float(parse_duration(value).total_seconds())


def window_open(entry_ts: float, now: float, window: dict[str, Any]) -> bool:
    """Whether a condition met at *entry_ts* still counts at *now* under the time window."""
    kind = str(window.get("type") or "DURATION_WINDOW")
    length = _secs(window.get("window"), 86400.0)
    local = datetime.fromtimestamp(now).astimezone()
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    if kind == "SLIDING_WINDOW":
        return now - entry_ts <= length
    if kind == "DAILY_TIME_DEADLINE":
        deadline = midnight + _clock(window.get("deadline"), 86399)
        return midnight <= entry_ts <= deadline and now <= deadline
    if kind == "DAILY_TIME_WINDOW":
        start, end = midnight + _clock(window.get("startTime"), 0), midnight + _clock(window.get("endTime"), 86399)
        return start <= entry_ts <= end and start <= now <= end
    advance = _secs(window.get("windowAdvance"), 0.0)
    origin = midnight + advance
    start = origin + ((now - origin) // length) * length
    return entry_ts >= start


def _clock(value: Any, default: float) -> float:
    t = _time(value)
    return default if t is None else t.hour * 3600 + t.minute * 60 + t.second


# --- the scheduler ------------------------------------------------------------------------

class Scheduler:
    """Fires schedules and backfills, evaluates flow triggers; run ``await run(stop)``."""

    def __init__(self, rt: Any, index: FlowIndex | None = None, clock: Callable[[], float] = time.time) -> None:
        self.rt = rt
        self.index = index or FlowIndex(rt)
        self.store = self.index.store
        self.conditions = Conditions(rt)
        self.clock = clock
        self._horizon: dict[tuple[str, str, str], float] = {}
        self._deadline = 0.0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._errors: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._seen_states: dict[str, str] = {}  # live execution id -> last state seen by _on_change

    def wake(self) -> None:
        """Re-read flows and triggers now (after a deploy, an enable, a backfill); callable from any thread."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._wake.set)
        else:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self.rt.on_end.append(self.on_end)
        self.rt.listeners.append(self._on_change)
        while not stop.is_set():
            try:
                delay = self.tick()
            except Exception:  # the scheduler must outlive any one bad flow or a busy database
                log.exception("scheduler pass failed; retrying in 1 s")
                delay = 1.0
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.005, delay))
            except TimeoutError:
                pass

    def tick(self) -> float:
        """One pass: fire what is due; return seconds until the next due date (at most 1).

        A pass fires for at most PASS_BUDGET seconds (then returns 0 to go on after the loop
        served everything else): a long backlog never stalls the API or the executions.
        """
        self.index.refresh()
        self._deadline = time.monotonic() + (PASS_BUDGET if self.rt.db.dialect == "sqlite" else PASS_BUDGET_REMOTE)
        now = self.clock()
        rows = self.store.all()
        soonest = now + 1.0
        for d, trigger in self.index.triggers(ScheduleTrigger):
            key = (d.namespace, d.id, trigger.id)
            try:
                nxt = self._schedule(d, trigger, rows.get(key), now)
            except Exception as exc:
                self._error(key, f"schedule failed: {exc}")
                continue
            if nxt is not None:
                soonest = min(soonest, nxt)
            row = rows.get(key)
            if row and row["state"].get("backfill"):
                if self._backfill(d, trigger, row):
                    soonest = min(soonest, now + 0.05)
        if time.monotonic() >= self._deadline:
            return 0.0  # more to do: yield to the loop, then go on
        return max(0.0, soonest - self.clock())

    def _error(self, key: tuple[str, str, str], message: str) -> None:
        last = self._errors.get(key)
        if last is None or last[0] != message or time.time() - last[1] > 60:
            log.error("%s.%s trigger `%s`: %s", *key, message)
            self._errors[key] = (message, time.time())

    # --- schedules --------------------------------------------------------------------
    def _schedule(self, d: Deployed, trigger: ScheduleTrigger, row: dict[str, Any] | None, now: float) -> float | None:
        key = (d.namespace, d.id, trigger.id)
        signature = trigger.signature()
        if row is None or row["next_at"] is None or row["state"].get("cron") != signature:
            state = dict(row["state"]) if row else {}
            state["cron"] = signature
            nxt = trigger.next_fire(now)
            self.store.upsert(*key, trigger.type, nxt, state)
            self._horizon[key] = now
            declared = getattr(trigger, "backfill", None)  # Kestra's older `backfill: {start, end}`, once
            if row is None and declared is not None and declared.start is not None:
                end = declared.end.timestamp() if declared.end is not None else None
                self.backfill(d, trigger, declared.start.timestamp(), end, declared.inputs, declared.labels)
            return nxt
        if trigger_disabled(d, trigger, row):
            self._horizon.pop(key, None)  # re-enabling counts what was skipped meanwhile as missed
            return None
        horizon = self._horizon.get(key, now)
        nxt = row["next_at"]
        policy = trigger.recoverMissedSchedules
        cutoff = horizon - GRACE
        if nxt < cutoff and policy != "ALL":
            last_missed = trigger.previous_fire(cutoff)
            if policy == "LAST":
                self._fire_tick(d, trigger, last_missed, now)
            nxt = trigger.next_fire(last_missed)
            self.store.advance(*key, nxt)
        fired = 0
        while nxt <= now and fired < BATCH and time.monotonic() < self._deadline:
            self._fire_tick(d, trigger, nxt, now)
            fired += 1
            nxt = trigger.next_fire(nxt)
        self._horizon[key] = now
        return nxt

    def _fire_tick(self, d: Deployed, trigger: ScheduleTrigger, ts: float, now: float) -> None:
        key = (d.namespace, d.id, trigger.id)
        nxt = trigger.next_fire(ts)
        late = trigger.lateMaximumDelay
        if late is not None and now - ts > late.total_seconds():
            log.info("%s.%s trigger `%s`: skipped %s, %.1f s late (lateMaximumDelay %s)", *key,
                     iso_in(ts, trigger.zone()), now - ts, late)
            self.store.advance(*key, nxt)
            return
        variables = schedule_variables(trigger, ts)
        with self.rt.db.transaction():
            current = self.store.get(*key)
            if current is not None and (current["next_at"] or 0) > ts:
                return  # another scheduler already went past this date
            tick = tick_key(ts)
            if not self.store.claim_tick(*key, tick):
                self.store.advance(*key, nxt)
                return
            ex = None
            if self._conditions_ok(d, trigger, variables, None):
                ex = start_execution(self.rt, d, trigger, variables, key=tick)
                if ex is not None:
                    self.store.set_tick_execution(*key, tick, ex.id)
            self.store.advance(*key, nxt, ts, ex.id if ex else None)

    def _conditions_ok(self, d: Deployed, trigger: Any, variables: dict[str, Any], upstream: Execution | None) -> bool:
        try:
            return self.conditions.check_all(trigger.conditions or [], variables, upstream, trigger.zone()
                                             if isinstance(trigger, ScheduleTrigger) else None)
        except Exception as exc:
            self._error((d.namespace, d.id, trigger.id), f"condition failed: {exc}")
            return False

    # --- backfills --------------------------------------------------------------------
    def backfill(self, d: Deployed, trigger: ScheduleTrigger, start: float, end: float | None, inputs: dict[str, Any] | None,
                 labels: dict[str, str] | None) -> dict[str, Any]:
        """Queue the dates of [start, end] to fire in order (paced by the flow's concurrency)."""
        key = (d.namespace, d.id, trigger.id)
        if self.store.get(*key) is None:
            self.store.upsert(*key, trigger.type, trigger.next_fire(self.clock()), {"cron": trigger.signature()})
        row = self.store.get(*key)
        end = end if end is not None else self.clock()
        first = trigger.next_fire(start - 1e-6)
        bf: dict[str, Any] = {"start": start, "end": end, "next": first, "inputs": inputs or {}, "labels": labels or {},
              "paused": False, "created": 0, "total": self._count(trigger, first, end)}
        state = dict(row["state"])
        state["backfill"] = bf
        self.store.save_state(*key, state)
        self.wake()
        return bf

    def _count(self, trigger: ScheduleTrigger, first: float, end: float, cap: int = 100_000) -> int:
        n, t = 0, first
        while t <= end and n < cap:
            n += 1
            t = trigger.next_fire(t)
        return n

    def set_backfill(self, d: Deployed, trigger: ScheduleTrigger, action: str) -> dict[str, Any] | None:
        key = (d.namespace, d.id, trigger.id)
        row = self.store.get(*key)
        if row is None or not row["state"].get("backfill"):
            return None
        state = dict(row["state"])
        bf: dict[str, Any] = state["backfill"]
        if action == "cancel":
            state.pop("backfill")
        else:
            bf["paused"] = action == "pause"
        self.store.save_state(*key, state)
        self.wake()
        return bf

    def _backfill(self, d: Deployed, trigger: ScheduleTrigger, row: dict[str, Any]) -> bool:
        """Fire the next backfill dates the flow's concurrency allows; True when more remain."""
        bf = row["state"]["backfill"]
        if bf.get("paused"):
            return False
        concurrency = getattr(d.flow, "concurrency", None)
        room = BATCH
        if concurrency is not None and concurrency.limit:
            room = concurrency.limit - self.rt.stores.executions.count_active(d.namespace, d.id)
        key = (d.namespace, d.id, trigger.id)
        while room > 0 and bf["next"] <= bf["end"] and time.monotonic() < self._deadline:
            ts = bf["next"]
            variables = {**schedule_variables(trigger, ts), "backfill": True}
            with self.rt.db.transaction():
                tick = tick_key(ts)
                if self.store.claim_tick(*key, tick):
                    ex = start_execution(self.rt, d, trigger, variables, key=tick, inputs=bf.get("inputs"),
                                         labels={**(bf.get("labels") or {}), "system.backfill": "true"})
                    if ex is not None:
                        self.store.set_tick_execution(*key, tick, ex.id)
                        bf["created"] = bf.get("created", 0) + 1
                        room -= 1
                bf["next"] = trigger.next_fire(ts)
                state = dict(self.store.get(*key)["state"])
                if state.get("backfill") is None:
                    return False  # cancelled meanwhile
                state["backfill"] = bf if bf["next"] <= bf["end"] else None
                if state["backfill"] is None:
                    state.pop("backfill")
                self.store.save_state(*key, state)
        return bf["next"] <= bf["end"] and room > 0

    # --- flow triggers ----------------------------------------------------------------
    def on_end(self, ex: Execution) -> None:
        """Runtime.on_end callback: start the flows whose execution trigger this end satisfies.

        It runs inside the engine loop, so nothing it raises may escape.
        """
        try:
            self._stop_after(ex)
            self._flow_triggers(ex)
        except Exception:
            log.exception("evaluating triggers after execution %s failed", ex.id)

    def _on_change(self, kind: str, payload: Any) -> None:
        """Runtime listener: a Flow trigger listing a non-terminal state (PAUSED, RUNNING…) fires when an
        execution enters it (once per execution and state; terminal states go through on_end)."""
        if kind != "execution" or payload.state in TERMINAL:
            return
        ex = payload
        if self._seen_states.get(ex.id) == ex.state:
            return
        self._seen_states[ex.id] = ex.state
        if len(self._seen_states) > 10_000:  # forget the oldest; a repeat is deduped by the execution key anyway
            del self._seen_states[next(iter(self._seen_states))]
        try:
            if any(set(t.states or ()) - set(TERMINAL) for _, t in self.index.triggers(ExecutionTrigger)):
                self._flow_triggers(ex)
        except Exception:
            log.exception("evaluating triggers after execution %s became %s failed", ex.id, ex.state)

    def _flow_triggers(self, ex: Execution) -> None:
        flow_triggers = self.index.triggers(ExecutionTrigger)
        if ex.state in TERMINAL:
            self._seen_states.pop(ex.id, None)
        if not flow_triggers:
            return
        variables = {"executionId": ex.id, "namespace": ex.namespace, "flowId": ex.flow_id,
                     "flowRevision": ex.flow_revision, "state": ex.state, "outputs": ex.outputs or {},
                     "labels": ex.labels,
                     "failedTasks": sorted({tr.task_id for tr in ex.task_runs.values() if tr.state == "FAILED"})}
        for d, trigger in flow_triggers:
            if (d.namespace, d.id) == (ex.namespace, ex.flow_id):
                continue  # a flow never triggers itself (that would loop forever)
            key = (d.namespace, d.id, trigger.id)
            try:
                if trigger_disabled(d, trigger, self.store.get(*key)):
                    continue
                if ex.state not in (trigger.states or TERMINAL):
                    continue
                ctx_vars = {**variables, "_context": {"flow": {"id": d.id, "namespace": d.namespace}}}
                if not self._conditions_ok(d, trigger, ctx_vars, ex):
                    continue
                stateful = [c for c in trigger.conditions or [] if condition_type(c) == "MultipleCondition"]
                if trigger.preconditions is not None or stateful:
                    if not self._windows(d, trigger, ex, ctx_vars, stateful):
                        continue
                # inputs may read the upstream execution's task outputs as `outputs.<task>` (Kestra's form)
                start_execution(self.rt, d, trigger, variables, key=ex.id if ex.state in TERMINAL else f"{ex.id}:{ex.state}",
                                extra={"outputs": ex.outputs_ctx})
            except Exception as exc:
                self._error(key, f"flow trigger failed for execution {ex.id}: {exc}")

    def _preconditions(self, d: Deployed, trigger: Any, variables: dict[str, Any]) -> Any:
        """The trigger's preconditions; rendered and validated when they hold expressions (``where``
        filter values are rendered per execution, by :meth:`_filter`)."""
        from tiercel.core.triggers import Preconditions

        pre = trigger.preconditions
        if pre is None or isinstance(pre, Preconditions):
            return pre
        context = {"flow": {"id": d.id, "namespace": d.namespace}, "trigger": variables}
        raw = {k: (v if k == "where" else self.rt.renderer.render(v, context)) for k, v in dict(pre).items()}
        return Preconditions.model_validate(raw)

    def _windows(self, d: Deployed, trigger: Any, ex: Execution, variables: dict[str, Any],
                 multiple: list[dict[str, Any]]) -> bool:
        """Record which preconditions this end meets; True when all are met within their windows."""
        groups: list[tuple[str, dict[str, Any], dict[str, bool], bool]] = []
        pre = self._preconditions(d, trigger, variables)
        if pre is not None:
            subs: dict[str, bool] = {}
            for f in pre.flows or []:
                ok = (ex.namespace == f.namespace and ex.flow_id == f.flowId and ex.state in (f.states or ["SUCCESS"])
                      and all(ex.labels.get(k) == v for k, v in (f.labels or {}).items()))
                subs[f"flow:{f.namespace}.{f.flowId}"] = ok
            for w in pre.where or []:
                results = [self._filter(flt, ex, variables) for flt in w.filters]
                subs[f"where:{w.id}"] = all(results) if w.operand == "AND" else any(results)
            window = pre.timeWindow.model_dump() if pre.timeWindow else {}
            groups.append((f"pre:{pre.id}", window, subs, pre.resetOnSuccess))
        for cond in multiple:
            subs = {}
            for name, sub in (cond.get("conditions") or {}).items():
                subs[name] = self.conditions.check(sub, variables, ex)
            window = {"type": "DURATION_WINDOW", "window": cond.get("window"), "windowAdvance": cond.get("windowAdvance"),
                      **(cond.get("timeWindow") or {})}
            groups.append((f"multiple:{cond.get('id', 'multiple')}", window, subs, cond.get("resetOnSuccess", True)))
        key = (d.namespace, d.id, trigger.id)
        now = self.clock()
        with self.rt.db.transaction():
            self.rt.db.lock("trigger", *key)  # read-modify-write of the trigger's state
            row = self.store.get(*key)
            if row is None:
                self.store.upsert(*key, trigger.type, None, {})
                row = self.store.get(*key)
            state = dict(row["state"])
            windows = state.setdefault("windows", {})
            complete, touched = True, False
            for gid, window, subs, _ in groups:
                met = windows.setdefault(gid, {})
                for name, ok in subs.items():
                    if ok:
                        met[name] = now
                        touched = True
                for name in list(met):
                    if name not in subs or not window_open(met[name], now, window):
                        met.pop(name)
                if not all(name in met for name in subs):
                    complete = False
            if complete and touched:
                for gid, _, _, reset in groups:
                    if reset:
                        windows[gid] = {}
            self.store.save_state(*key, state)
        return complete and touched

    def _filter(self, flt: Any, ex: Execution, variables: dict[str, Any]) -> bool:
        if flt.field == "EXPRESSION":
            value: Any = self.rt.renderer.render(flt.value or "", {"trigger": variables})
            subject, wanted = value, None
        else:
            subject = {"FLOW_ID": ex.flow_id, "NAMESPACE": ex.namespace, "STATE": ex.state}[flt.field]
            wanted = flt.value
        kind = flt.type
        values = flt.values or ([] if wanted is None else [wanted])
        if kind == "EQUAL_TO":
            return str(subject) == str(wanted)
        if kind == "NOT_EQUAL_TO":
            return str(subject) != str(wanted)
        if kind == "IN":
            return str(subject) in values
        if kind == "NOT_IN":
            return str(subject) not in values
        if kind in ("IS_TRUE", "IS_FALSE"):
            from tiercel.expr import truthy

            wanted_truth: bool = kind == "IS_TRUE"
            return truthy(subject) is wanted_truth
        if kind == "IS_NULL":
            return subject in (None, "")
        if kind == "IS_NOT_NULL":
            return subject not in (None, "")
        if kind == "STARTS_WITH":
            return str(subject).startswith(str(wanted))
        if kind == "ENDS_WITH":
            return str(subject).endswith(str(wanted))
        if kind == "CONTAINS":
            return str(wanted) in str(subject)
        if kind == "REGEX":
            return re.fullmatch(str(wanted), str(subject)) is not None
        return False

    def _stop_after(self, ex: Execution) -> None:
        """A trigger's ``stopAfter``: disable it once one of its executions ends in a listed state."""
        trig = ex.trigger or {}
        if not trig.get("id"):
            return
        d = self.index.get(ex.namespace, ex.flow_id)
        if d is None:
            return
        for t in d.flow.triggers:
            if t.id == trig["id"] and t.stopAfter and ex.state in t.stopAfter:
                self.store.set_disabled(d.namespace, d.id, t.id, type(t).type, True)
                log.info("%s.%s trigger `%s` disabled: execution %s ended %s (stopAfter)", d.namespace, d.id, t.id,
                         ex.id, ex.state)


def describe_trigger(d: Deployed, trigger: Any, row: dict[str, Any] | None) -> dict[str, Any]:
    """A trigger as the API lists it: next fire date, last execution, backfill progress."""
    tz = trigger.zone() if isinstance(trigger, ScheduleTrigger) else None
    state = (row or {}).get("state") or {}
    bf = state.get("backfill")
    out = {"namespace": d.namespace, "flowId": d.id, "triggerId": trigger.id, "type": type(trigger).type,
           "disabled": trigger_disabled(d, trigger, row), "flowRevision": d.revision,
           "nextExecutionDate": iso_in((row or {}).get("next_at"), tz) if tz else None,
           "lastTriggeredDate": iso_in((row or {}).get("last_at"), tz or _UTC),
           "executionId": (row or {}).get("last_execution_id"),
           "updatedDate": iso_in((row or {}).get("updated_at"), _UTC)}
    if bf:
        out["backfill"] = {"start": iso_in(bf["start"], tz or _UTC), "end": iso_in(bf["end"], tz or _UTC),
                           "currentDate": iso_in(bf["next"], tz or _UTC), "paused": bf.get("paused", False),
                           "created": bf.get("created", 0), "total": bf.get("total"),
                           "inputs": bf.get("inputs") or {}, "labels": bf.get("labels") or {}}
    return out
