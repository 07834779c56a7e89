"""Health probes, ``/metrics``, and the HTTP request metrics of the API.

- ``GET /health/live``: 200 while the process answers (a liveness probe restarts it otherwise).
- ``GET /health/ready``: 200 when the database answers and the internal storage can be written
  and read back; 503 naming the failing check and why (a readiness probe stops sending traffic).
- ``GET /metrics``: Prometheus's text format. With authentication off every caller reads it (the
  server is on loopback, or behind a proxy that authenticates: ``--no-auth``); with it on, any
  authenticated caller, who sees the samples of its own namespaces only (plus those without one).
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tiercel.server.auth import principal_of

ROUTE_KEY = "tiercel.route"


def _check_database(rt: Any) -> None:
    rt.db.query("SELECT 1")


def _check_storage(rt: Any) -> None:
    backend = rt.storage.backend
    path = f"_health/{rt.process_id}-{uuid.uuid4().hex}"
    backend.put(path, io.BytesIO(b"ok"))
    try:
        with backend.open(path) as f:
            data = f.read()
        if data != b"ok":
            raise RuntimeError("read back different bytes than written")
    finally:
        backend.delete(path)


async def live(request: Request) -> Response:
    from tiercel.server.app import Json

    return Json({"status": "UP"})


async def ready(request: Request) -> Response:
    from tiercel.server.app import Json, svc

    rt = svc(request).rt
    checks: dict[str, dict[str, Any]] = {}
    for name, check in (("database", _check_database), ("storage", _check_storage)):
        try:
            await asyncio.wait_for(asyncio.to_thread(check, rt), 5.0)
            checks[name] = {"status": "UP"}
        except Exception as exc:  # the probe says why, in one line
            checks[name] = {"status": "DOWN", "error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}
    up = all(c["status"] == "UP" for c in checks.values())
    return Json({"status": "UP" if up else "DOWN", "checks": checks}, status_code=200 if up else 503)


async def metrics(request: Request) -> Response:
    from tiercel.observability.metrics import exposition

    body, content_type = exposition(request.headers.get("accept"))
    if request.app.state.auth.settings.enabled:
        body = _visible_only(body, principal_of(request))
    return Response(body, media_type=content_type.split(";")[0], headers={"Content-Type": content_type})


def _visible_only(body: bytes, principal: Any) -> bytes:
    """Drop the samples of namespaces the caller has no role on (names do not leak)."""
    import re

    pattern = re.compile(rb'namespace="((?:[^"\\]|\\.)*)"')
    seen: dict[bytes, bool] = {}
    out = []
    for line in body.splitlines(keepends=True):
        match = pattern.search(line) if not line.startswith(b"#") else None
        if match is not None:
            ns = match.group(1)
            if ns not in seen:
                seen[ns] = principal.role_on(ns.decode()) >= 0
            if not seen[ns]:
                continue
        out.append(line)
    return b"".join(out)


class HttpMetrics:
    """ASGI middleware counting requests by method, route template and status, and timing them.

    The route template (``/api/v1/executions/{executionId}``) is written into the scope by the
    route's handler; a request that matched no route counts as ``(unmatched)``, the UI's pages as ``/ui``.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        from tiercel.observability import metrics_enabled

        self.enabled = metrics_enabled()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        from tiercel.observability.metrics import observe_http

        started = time.perf_counter()
        status = [500]

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get(ROUTE_KEY) or ("/ui" if scope.get("path", "").startswith("/ui") else "(unmatched)")
            observe_http(scope["method"], route, status[0], time.perf_counter() - started)


def routes() -> list[tuple[str, Any]]:
    """(path, handler) of the probes and /metrics, all GET."""
    return [("/health/live", live), ("/health/ready", ready), ("/metrics", metrics)]
