"""OpenTelemetry traces of executions: off unless configured.

``TIERCEL_TRACING=otlp`` exports over OTLP/HTTP (the ``tiercel[otlp]`` extra; the endpoint and
headers come from the standard ``OTEL_EXPORTER_OTLP_*`` variables), ``console`` prints spans as
JSON on stderr; :func:`configure` takes any span exporter (tests use the SDK's in-memory one).

The model: one trace per execution tree (a subflow's execution joins its parent's trace), a
root span per execution, a span per task-run attempt, nested under its flowable's attempt (and
a subflow's execution under the task run that started it). Span and trace ids are derived from
the execution and task-run ids, so any process can name a span without asking another: the
worker hands ``TRACEPARENT`` to a script before the attempt's span exists, and the span is
recorded when the attempt ends, with its real start and end times. Nothing is done per step
of the engine: a span is built once, when what it covers has ended.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from tiercel.hookspecs import hookimpl

_processor: Any = None
_resource: Any = None
_scope: Any = None
_configured_from_env = False
_atexit = False


def enabled() -> bool:
    """Whether this process records spans (configure() was called, or TIERCEL_TRACING names an exporter)."""
    if _processor is not None:
        return True
    return os.environ.get("TIERCEL_TRACING", "").strip().lower() in ("otlp", "console")


def configure(exporter: Any = None, batch: bool = True) -> None:
    """Record spans to *exporter* (an OpenTelemetry ``SpanExporter``); None stops tracing.

    *batch* exports from a background thread (``BatchSpanProcessor``); False exports each span
    as it ends (``SimpleSpanProcessor``, for tests).
    """
    global _processor, _resource, _scope
    if _processor is not None:
        _processor.shutdown()
        _processor = None
    if exporter is None:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from tiercel import __version__

    _resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "tiercel"),
                                 "service.version": __version__})
    _scope = InstrumentationScope("tiercel", __version__)
    _processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    global _atexit
    if not _atexit:
        import atexit

        atexit.register(lambda: _processor.shutdown() if _processor is not None else None)
        _atexit = True


def _from_env() -> Any:
    global _configured_from_env
    if _processor is None and not _configured_from_env:
        _configured_from_env = True
        kind = os.environ.get("TIERCEL_TRACING", "").strip().lower()
        if kind == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            configure(ConsoleSpanExporter(out=_Stderr()))
        elif kind == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError as exc:
                raise RuntimeError("TIERCEL_TRACING=otlp needs the OTLP exporter: pip install 'tiercel[otlp]'") from exc
            configure(OTLPSpanExporter())
    return _processor


class _Stderr:
    def write(self, text: str) -> int:
        import sys

        return sys.stderr.write(text)

    def flush(self) -> None:
        import sys

        sys.stderr.flush()


def flush() -> None:
    """Export the spans recorded so far (at exit, in tests)."""
    if _processor is not None:
        _processor.force_flush()


# --- ids -------------------------------------------------------------------------------------

def _digest(*parts: object) -> bytes:
    return hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=16).digest()


def trace_id(correlation_id: str) -> int:
    return int.from_bytes(_digest("trace", correlation_id), "big") or 1


def execution_span_id(execution_id: str) -> int:
    return int.from_bytes(_digest("execution", execution_id)[:8], "big") or 1


def attempt_span_id(task_run_id: str, attempt: int) -> int:
    return int.from_bytes(_digest("attempt", task_run_id, attempt)[:8], "big") or 1


def traceparent(correlation_id: str, task_run_id: str, attempt: int) -> str:
    """The W3C ``traceparent`` of a task-run attempt: what scripts get as ``TRACEPARENT``."""
    return f"00-{trace_id(correlation_id):032x}-{attempt_span_id(task_run_id, attempt):016x}-01"


# --- spans -----------------------------------------------------------------------------------

def _ns(ts: float | None) -> int | None:
    return int(ts * 1e9) if ts is not None else None


def _record(name: str, trace: int, span: int, parent: int | None, start: float | None, end: float | None,
            attributes: dict[str, Any], failed: bool, error: str | None = None) -> None:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    processor = _processor or _from_env()
    if processor is None:
        return
    flags = TraceFlags(TraceFlags.SAMPLED)
    context = SpanContext(trace, span, is_remote=False, trace_flags=flags)
    parent_context = SpanContext(trace, parent, is_remote=False, trace_flags=flags) if parent else None
    start_ns = _ns(start)
    status = Status(StatusCode.ERROR, error) if failed else Status(StatusCode.UNSET)
    processor.on_end(ReadableSpan(name=name, context=context, parent=parent_context, resource=_resource,
                                  attributes=attributes, kind=SpanKind.INTERNAL, status=status,
                                  start_time=start_ns, end_time=_ns(end) or start_ns,
                                  instrumentation_scope=_scope))


FAILED = ("FAILED", "KILLED", "CANCELLED")


@hookimpl
def on_task_run_end(execution_id: str, namespace: str, flow_id: str, task_id: str, task_type: str, task_run_id: str,
                    parent_task_run_id: str | None, attempts: list[dict[str, Any]], started_at: float | None,
                    ended_at: float | None, correlation_id: str, parent_attempt: int) -> None:
    trace = trace_id(correlation_id)
    parent = attempt_span_id(parent_task_run_id, parent_attempt) if parent_task_run_id else execution_span_id(execution_id)
    base = {"tiercel.execution.id": execution_id, "tiercel.namespace": namespace, "tiercel.flow.id": flow_id,
            "tiercel.task.id": task_id, "tiercel.task.type": task_type, "tiercel.taskrun.id": task_run_id}
    for a in attempts or [{"attempt": 0, "state": "SUCCESS", "startedAt": started_at, "endedAt": ended_at}]:
        state = str(a["state"])
        _record(f"{task_id} {task_type}", trace, attempt_span_id(task_run_id, a["attempt"]), parent,
                a.get("startedAt") or started_at, a.get("endedAt") or ended_at,
                {**base, "tiercel.attempt": a["attempt"], "tiercel.state": state}, state in FAILED, a.get("error"))


@hookimpl
def on_execution_end(execution_id: str, namespace: str, flow_id: str, state: str, created_at: float,
                     ended_at: float | None, parent_task_run_id: str | None, parent_attempt: int,
                     correlation_id: str, execution: dict[str, Any]) -> None:
    parent = attempt_span_id(parent_task_run_id, parent_attempt) if parent_task_run_id else None
    _record(f"execution {namespace}.{flow_id}", trace_id(correlation_id), execution_span_id(execution_id), parent,
            created_at, ended_at, {"tiercel.execution.id": execution_id, "tiercel.namespace": namespace,
                                   "tiercel.flow.id": flow_id, "tiercel.state": state},
            state in FAILED, execution.get("error"))
