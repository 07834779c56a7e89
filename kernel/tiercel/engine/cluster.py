"""What `tiercel cluster status` and ``GET /api/v1/cluster`` show: live processes and queue depth."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tiercel.engine.ownership import DEAD_AFTER


def status(stores: Any, quotas: Any = None) -> dict[str, Any]:
    """Processes (kind, host, pid, version, started, heartbeat, slots busy/total, queues), per-queue depth
    and the oldest waiting job, and the namespace quotas with their running and queued executions."""
    from tiercel.model import iso

    now = time.time()
    processes = []
    for p in stores.processes.all():
        age = now - p["lastSeen"]
        processes.append({
            "id": p["id"], "kind": p["kind"], "host": p["host"], "pid": p["pid"], "version": p["version"],
            "startedAt": iso(p["startedAt"]), "lastHeartbeat": iso(p["lastSeen"]),
            "heartbeatAgeSeconds": round(age, 3), "alive": age < DEAD_AFTER,
            "slots": p["slots"], "busy": p["busy"], "queues": p["queues"]})
    queues = {q["queue"]: q for q in stores.jobs.depth()}
    for p in processes:  # a queue some worker listens to shows even when empty
        for name in p["queues"] or []:
            queues.setdefault(name, {"queue": name, "waiting": 0, "running": 0, "oldestWaitingSeconds": None})
    for q in queues.values():
        q["workers"] = sum(1 for p in processes if p["alive"] and q["queue"] in (p["queues"] or []))
    return {"processes": processes, "queues": sorted(queues.values(), key=lambda q: q["queue"]),
            "quotas": quotas.status() if quotas is not None and quotas.limits else []}


def render(data: dict[str, Any]) -> str:
    """The status as text tables."""
    lines = ["PROCESSES"]
    rows: list[tuple[str, ...]] = [("KIND", "HOST", "PID", "VERSION", "STARTED", "HEARTBEAT", "SLOTS", "QUEUES")]
    for p in data["processes"]:
        slots = f"{p['busy']}/{p['slots']}" if p["slots"] is not None else "-"
        beat = f"{p['heartbeatAgeSeconds']:.1f}s ago" + ("" if p["alive"] else " (dead)")
        rows.append((p["kind"], p["host"], str(p["pid"]), p["version"] or "-", p["startedAt"] or "-", beat, slots,
                     ",".join(p["queues"] or []) or "-"))
    lines += _table(rows)
    lines += ["", "QUEUES"]
    rows = [("QUEUE", "WAITING", "RUNNING", "OLDEST WAITING", "WORKERS")]
    for q in data["queues"]:
        oldest = f"{q['oldestWaitingSeconds']:.1f}s" if q["oldestWaitingSeconds"] is not None else "-"
        rows.append((str(q["queue"]), str(q["waiting"]), str(q["running"]), oldest, str(q["workers"])))
    lines += _table(rows)
    if data.get("quotas"):
        lines += ["", "NAMESPACE QUOTAS"]
        rows = [("NAMESPACE", "RUNNING", "LIMIT", "QUEUED")]
        rows += [(str(q["namespace"]), str(q["running"]), str(q["limit"]), str(q["queued"])) for q in data["quotas"]]
        lines += _table(rows)
    return "\n".join(lines)


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
