"""What Tiercel tells about itself: Prometheus metrics, OpenTelemetry traces, structured logs, health.

Metrics and traces are fed by the kernel's ``on_*`` hooks (:mod:`tiercel.hookspecs`): the two
are built-in plugins registered next to the installed ones, so a third-party plugin sees the
same notifications with the same arguments. Each is on or off per process:

- metrics: on unless ``TIERCEL_METRICS=off`` (they cost a dict update per event);
- tracing: off unless ``TIERCEL_TRACING=otlp`` or ``console`` (or :func:`tracing.configure`).
"""

from __future__ import annotations

import os
from typing import Any

OFF = ("0", "off", "false", "no", "none", "")


def metrics_enabled() -> bool:
    return os.environ.get("TIERCEL_METRICS", "on").strip().lower() not in OFF


def builtin_plugins() -> list[tuple[str, Any]]:
    """(name, module) of the kernel's own hook implementations that are on in this process."""
    out: list[tuple[str, Any]] = []
    if metrics_enabled():
        from tiercel.observability import metrics

        out.append(("tiercel-metrics", metrics))
    from tiercel.observability import tracing

    if tracing.enabled():
        out.append(("tiercel-tracing", tracing))
    return out


def builtin_hooks() -> set[str]:
    """The ``on_*`` hooks the built-in plugins of this process implement."""
    names: set[str] = set()
    for _, module in builtin_plugins():
        names |= {n for n, fn in vars(module).items() if callable(fn) and hasattr(fn, "tiercel_impl")}
    return names
