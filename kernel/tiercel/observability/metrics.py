"""Prometheus metrics of a Tiercel process, fed by the kernel's ``on_*`` hooks.

The engine runs on one asyncio loop, so a metric here is a plain dict from label values to a
number (or to a row of histogram buckets): recording one is a dict update, with no lock and no
object per call. ``prometheus-client`` reads them only when scraped, through a collector
registered in its default registry (which also holds the ``process_*`` and ``python_*`` metrics).

Labels are bounded: namespaces, flows, task and trigger types and ids, states, HTTP route
templates. Never an execution or task-run id.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from tiercel.hookspecs import hookimpl

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Counter:
    __slots__ = ("name", "doc", "labels", "values")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        values = self.values
        values[key] = values.get(key, 0.0) + amount

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in list(self.values.items()):
            family.add_metric(key, value)
        return family


class Histogram:
    __slots__ = ("name", "doc", "labels", "bounds", "values")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> None:
        self.name, self.doc, self.labels, self.bounds = name, doc, labels, buckets
        #: label values -> [count per bucket..., count above the last, sum]
        self.values: dict[tuple[str, ...], list[float]] = {}

    def observe(self, key: tuple[str, ...], value: float) -> None:
        row = self.values.get(key)
        if row is None:
            row = self.values[key] = [0] * (len(self.bounds) + 1) + [0.0]
        row[bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def collect(self) -> Any:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for key, row in list(self.values.items()):
            row = list(row)
            total, buckets = 0.0, []
            for bound, count in zip((*self.bounds, float("inf")), row[:-1], strict=True):
                total += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), total))
            family.add_metric(list(key), buckets, row[-1])
        return family


NS_FLOW = ("namespace", "flow")
EXECUTIONS_CREATED = Counter("tiercel_executions_created", "Executions created in this process.", NS_FLOW)
EXECUTIONS = Counter("tiercel_executions", "Executions ended in this process, by final state.", (*NS_FLOW, "state"))
EXECUTION_DURATION = Histogram("tiercel_execution_duration_seconds", "Execution duration, creation to end.",
                               (*NS_FLOW, "state"), DURATION_BUCKETS)
TASK_RUNS = Counter("tiercel_task_runs", "Task runs ended, by task type and final state.", (*NS_FLOW, "type", "state"))
TASK_ATTEMPTS = Counter("tiercel_task_run_attempts", "Task-run attempts ended (a retried task counts each).",
                        (*NS_FLOW, "type", "state"))
TASK_DURATION = Histogram("tiercel_task_run_duration_seconds", "Task-run duration, first start to end.",
                          (*NS_FLOW, "type"), DURATION_BUCKETS)
TRIGGER_LAG = Histogram("tiercel_trigger_lag_seconds", "Scheduled date to execution creation, per trigger.",
                        (*NS_FLOW, "trigger"), LAG_BUCKETS)
TRIGGER_MESSAGES = Counter("tiercel_trigger_messages", "Messages consumed by event triggers.",
                           (*NS_FLOW, "trigger", "type"))
TRIGGER_ERRORS = Counter("tiercel_trigger_errors", "Failures of polling and realtime triggers (each is a backoff).",
                         (*NS_FLOW, "trigger", "type"))
HTTP_REQUESTS = Counter("tiercel_http_requests", "HTTP requests answered, by route template and status.",
                        ("method", "route", "status"))
HTTP_DURATION = Histogram("tiercel_http_request_duration_seconds", "HTTP request duration, by route template.",
                          ("method", "route"), HTTP_BUCKETS)
ALL: tuple[Counter | Histogram, ...] = (
    EXECUTIONS_CREATED, EXECUTIONS, EXECUTION_DURATION, TASK_RUNS, TASK_ATTEMPTS, TASK_DURATION, TRIGGER_LAG,
    TRIGGER_MESSAGES, TRIGGER_ERRORS, HTTP_REQUESTS, HTTP_DURATION)

_runtimes: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_registered = False


class _Collector:
    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        for metric in ALL:
            yield metric.collect()
        running = GaugeMetricFamily("tiercel_executions_running", "Executions this process runs now.")
        slots = GaugeMetricFamily("tiercel_worker_slots", "Task slots of this process's worker.", labels=("state",))
        waiting = GaugeMetricFamily("tiercel_worker_jobs_waiting", "Jobs waiting for a free worker slot.")
        live = busy = total = queued = 0
        for rt in list(_runtimes):
            worker = rt.worker
            free = int(getattr(worker.slots, "_value", 0))
            live += len(rt.live)
            total += worker.capacity
            busy += worker.capacity - free
            queued += max(0, len(worker.running) - (worker.capacity - free))
        running.add_metric([], live)
        slots.add_metric(["busy"], busy)
        slots.add_metric(["total"], total)
        waiting.add_metric([], queued)
        yield from (running, slots, waiting)


def register() -> None:
    """Put Tiercel's metrics in prometheus-client's default registry (once per process)."""
    global _registered
    with _lock:
        if not _registered:
            from prometheus_client import REGISTRY

            REGISTRY.register(_Collector())  # type: ignore[arg-type]
            _registered = True


def watch(runtime: Any) -> None:
    """Report the gauges (executions running, worker slots) of *runtime* while it lives.

    prometheus-client is imported only when something reads the metrics (``tiercel run`` never does).
    """
    _runtimes.add(runtime)


def exposition(accept: str | None = None) -> tuple[bytes, str]:
    """The metrics in Prometheus's text format (or OpenMetrics when *accept* asks): (body, content type)."""
    from prometheus_client import REGISTRY
    from prometheus_client.exposition import choose_encoder

    register()
    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY), content_type


def start_metrics_server(port: int, host: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` on *host*:*port* from a daemon thread (``--metrics-port`` of the engine commands).

    Returns the HTTP server (``.shutdown()`` stops it); port 0 takes a free port (``.server_port``).
    """
    from prometheus_client import start_http_server

    register()
    server, _thread = start_http_server(port, addr=host)
    return server


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.inc((method, route, str(status)))
    HTTP_DURATION.observe((method, route), seconds)


def _epoch(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


# --- the hooks that feed them -------------------------------------------------------------------

@hookimpl
def on_execution_created(namespace: str, flow_id: str, created_at: float, trigger: dict[str, Any] | None) -> None:
    EXECUTIONS_CREATED.inc((namespace, flow_id))
    if trigger:
        variables = trigger.get("variables")
        scheduled = _epoch(variables.get("date")) if isinstance(variables, dict) else None
        if scheduled is not None and trigger.get("id"):
            TRIGGER_LAG.observe((namespace, flow_id, str(trigger["id"])), max(0.0, created_at - scheduled))


@hookimpl
def on_execution_end(namespace: str, flow_id: str, state: str, created_at: float, ended_at: float | None) -> None:
    key = (namespace, flow_id, state)
    EXECUTIONS.inc(key)
    if ended_at is not None:
        EXECUTION_DURATION.observe(key, max(0.0, ended_at - created_at))


@hookimpl
def on_task_run_end(namespace: str, flow_id: str, task_type: str, state: str, attempts: list[dict[str, Any]],
                    started_at: float | None, ended_at: float | None) -> None:
    TASK_RUNS.inc((namespace, flow_id, task_type, state))
    for attempt in attempts:
        TASK_ATTEMPTS.inc((namespace, flow_id, task_type, str(attempt["state"])))
    if started_at is not None and ended_at is not None:
        TASK_DURATION.observe((namespace, flow_id, task_type), max(0.0, ended_at - started_at))


@hookimpl
def on_trigger_event(namespace: str, flow_id: str, trigger_id: str, trigger_type: str, count: int) -> None:
    TRIGGER_MESSAGES.inc((namespace, flow_id, trigger_id, trigger_type), count)


@hookimpl
def on_trigger_error(namespace: str, flow_id: str, trigger_id: str, trigger_type: str) -> None:
    TRIGGER_ERRORS.inc((namespace, flow_id, trigger_id, trigger_type))
