"""API endpoints the web UI needs beyond Kestra's core set: flow graphs, namespaces with counts,
the latest execution of each flow. Kept apart from app.py; routes and their OpenAPI entries here."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tiercel.server.app import ApiError, Json, execution_or_404, int_param, parse_flow, query, svc, yaml_body
from tiercel.server.auth import allow, visible


async def graph_of_source(request: Request) -> Response:
    """``POST /flows/graph``: the graph of a YAML flow, saved or not (the editor's live topology).

    A flow that does not validate is a normal moment of editing, not a failed request: the answer
    is then an empty graph with the ``errors`` (the editor keeps showing the last good graph).
    """
    from tiercel.server.graph import flow_graph

    s = svc(request)
    text = await yaml_body(request)
    try:
        flow = await parse_flow(s.rt, text)
    except ApiError as exc:
        return Json(
            {"nodes": [], "edges": [], "clusters": [], "errors": exc.extra.get("errors") or [{"message": exc.message}]}
        )
    return Json({**flow_graph(flow), "errors": []})


async def graph_of_flow(request: Request) -> Response:
    from tiercel.server.graph import flow_graph

    s = svc(request)
    namespace, flow_id = request.path_params["namespace"], request.path_params["id"]
    allow(request, namespace, f"flow {namespace}.{flow_id} not found")
    revision = int_param(request, "revision", 0, 0, 10**9) or None
    row = s.rt.stores.flows.get(namespace, flow_id, revision)
    if row is None:
        raise ApiError(404, f"flow {namespace}.{flow_id}{f' revision {revision}' if revision else ''} not found")
    return Json(flow_graph(await parse_flow(s.rt, row["source"])))


async def graph_of_execution(request: Request) -> Response:
    """The graph of the flow revision an execution ran, each task node with its runs' state."""
    from tiercel.server.graph import execution_graph

    s = svc(request)
    ex = execution_or_404(s.rt, request.path_params["executionId"], request)
    source = s.rt.stores.flows.source(ex.flow_hash)
    if source is None:
        raise ApiError(404, f"the flow source of execution {ex.id} is no longer stored")
    return Json(execution_graph(await parse_flow(s.rt, source[0]), ex.to_json()))


async def namespaces(request: Request) -> Response:
    """Every namespace holding flows, with its parents, and how many flows each holds (own and below)."""
    s = svc(request)
    own: dict[str, int] = {}
    for row in s.rt.stores.flows.list():
        if not visible(request, row["namespace"]):
            continue
        own[row["namespace"]] = own.get(row["namespace"], 0) + 1
    total: dict[str, int] = {}
    for namespace, count in own.items():
        parts = namespace.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            total[prefix] = total.get(prefix, 0) + count
    return Json([{"namespace": ns, "flows": own.get(ns, 0), "total": total[ns]} for ns in sorted(total)])


async def latest_executions(request: Request) -> Response:
    """The latest execution of each flow (under ``namespace`` when given): the flows list shows its state."""
    s = svc(request)
    rows = await asyncio.to_thread(s.rt.stores.executions.latest_per_flow, query(request, "namespace") or None)
    return Json([r for r in rows if visible(request, r["namespace"])])


#: How much of a file ``/file/preview`` reads at most (``maxBytes`` may lower it).
PREVIEW_BYTES = 256 << 10


async def _execution_file(request: Request) -> tuple[Any, str, str]:
    """The execution, the ``tiercel://`` URI in ``path`` and its storage path: only files of this execution."""
    from tiercel.api import StorageError
    from tiercel.engine.storage import InternalStorage, namespace_path

    s = svc(request)
    ex = execution_or_404(s.rt, request.path_params["executionId"], request)
    uri = query(request, "path")
    if not uri:
        raise ApiError(400, "send the file's tiercel:// URI as `path` (an output of the execution)")
    own = f"{namespace_path(ex.namespace)}/{ex.flow_id}/executions/{ex.id}/"
    try:
        path = InternalStorage.path_of(uri, ex.namespace)
    except StorageError as exc:
        raise ApiError(400, str(exc)) from None
    if not path.startswith(own):
        raise ApiError(400, f"{uri} is not a file of execution {ex.id} (its files are under tiercel://{own})")
    if not await asyncio.to_thread(s.rt.storage.backend.exists, path):
        raise ApiError(404, f"file {uri} not found")
    return ex, uri, path


async def execution_file(request: Request) -> Response:
    """``GET /executions/{id}/file?path=tiercel://…``: a file of the execution, as a download.

    Always ``application/octet-stream`` and an attachment (with ``nosniff``): a file a task wrote
    never runs as a page of the server's origin.
    """
    from urllib.parse import quote

    from starlette.concurrency import iterate_in_threadpool
    from starlette.responses import StreamingResponse

    s = svc(request)
    _, _, path = await _execution_file(request)
    size = await asyncio.to_thread(s.rt.storage.backend.size, path)
    stream = await asyncio.to_thread(s.rt.storage.backend.open, path)

    def chunks() -> Any:
        with stream:
            while chunk := stream.read(64 << 10):
                yield chunk

    name = path.rsplit("/", 1)[-1]
    return StreamingResponse(iterate_in_threadpool(chunks()), media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        "Content-Length": str(size), "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


async def execution_file_preview(request: Request) -> Response:
    """``GET /executions/{id}/file/preview?path=…``: the start of a file as text (``TEXT``), or ``BINARY``."""
    s = svc(request)
    _, uri, path = await _execution_file(request)
    limit = int_param(request, "maxBytes", PREVIEW_BYTES, 1, PREVIEW_BYTES)

    def head() -> tuple[int, bytes]:
        with s.rt.storage.backend.open(path) as fh:
            return s.rt.storage.backend.size(path), fh.read(limit + 1)

    size, data = await asyncio.to_thread(head)
    truncated = len(data) > limit
    data = data[:limit]
    name = path.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not truncated or exc.start < len(data) - 3:  # a character cut at the limit is not binary
            return Json({"uri": uri, "name": name, "extension": extension, "size": size, "type": "BINARY",
                         "content": None, "truncated": truncated})
        text = data[:exc.start].decode("utf-8")
    if "\x00" in text:
        return Json({"uri": uri, "name": name, "extension": extension, "size": size, "type": "BINARY",
                     "content": None, "truncated": truncated})
    return Json({"uri": uri, "name": name, "extension": extension, "size": size, "type": "TEXT", "content": text,
                 "truncated": truncated})


def routes() -> list[Route]:
    p = "/api/v1"
    return [
        Route(f"{p}/flows/graph", graph_of_source, methods=["POST"]),
        Route(f"{p}/flows/{{namespace}}/{{id}}/graph", graph_of_flow, methods=["GET"]),
        Route(f"{p}/executions/latest", latest_executions, methods=["GET"]),
        Route(f"{p}/executions/{{executionId}}/graph", graph_of_execution, methods=["GET"]),
        Route(f"{p}/executions/{{executionId}}/file", execution_file, methods=["GET"]),
        Route(f"{p}/executions/{{executionId}}/file/preview", execution_file_preview, methods=["GET"]),
        Route(f"{p}/namespaces", namespaces, methods=["GET"]),
    ]


def paths() -> dict[str, Any]:
    """The OpenAPI entries of :func:`routes`."""
    from tiercel.server.openapi import BAD, EXEC_ID, ID, NOT_FOUND, NS, YAML_BODY, _err, _json, _op, _query

    graph = {
        "type": "object",
        "required": ["nodes", "edges", "clusters"],
        "properties": {k: {"type": "array", "items": {"type": "object"}} for k in ("nodes", "edges", "clusters")},
    }
    path = {"name": "path", "in": "query", "required": True, "schema": {"type": "string"},
            "description": "The file's tiercel:// URI (an output or input of the execution)"}
    preview = {
        "type": "object",
        "required": ["uri", "name", "size", "type", "content", "truncated"],
        "properties": {
            "uri": {"type": "string"}, "name": {"type": "string"}, "extension": {"type": "string"},
            "size": {"type": "integer"}, "type": {"type": "string", "enum": ["TEXT", "BINARY"]},
            "content": {"type": "string", "nullable": True}, "truncated": {"type": "boolean"},
        },
    }
    rev = _query("revision", {"type": "integer", "minimum": 1, "maximum": 1000000000})
    return {
        "/api/v1/flows/graph": {
            "post": _op(
                "Flows",
                "Graph of a flow source (with `errors` when it is invalid)",
                {"200": _json(graph), "400": BAD, "413": _err("Too large"), "415": _err("Not YAML")},
                body=YAML_BODY,
            )
        },
        "/api/v1/flows/{namespace}/{id}/graph": {
            "get": _op(
                "Flows",
                "Graph of a deployed flow",
                {"200": _json(graph), "400": BAD, "404": NOT_FOUND, "422": _err("Invalid flow")},
                [NS, ID, rev],
            )
        },
        "/api/v1/executions/latest": {
            "get": _op(
                "Executions",
                "Latest execution of each flow",
                {"200": _json({"type": "array", "items": {"type": "object"}}), "400": BAD},
                [_query("namespace", {"type": "string"})],
            )
        },
        "/api/v1/executions/{executionId}/graph": {
            "get": _op(
                "Executions",
                "Graph of an execution",
                {"200": _json(graph), "400": BAD, "404": NOT_FOUND, "422": _err("Invalid flow")},
                [EXEC_ID],
            )
        },
        "/api/v1/executions/{executionId}/file": {
            "get": _op(
                "Executions",
                "Download a file of an execution",
                {"200": {"description": "The file", "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}}, "400": BAD, "404": NOT_FOUND},
                [EXEC_ID, path],
            )
        },
        "/api/v1/executions/{executionId}/file/preview": {
            "get": _op(
                "Executions",
                "Preview a file of an execution",
                {"200": _json(preview), "400": BAD, "404": NOT_FOUND},
                [EXEC_ID, path, _query("maxBytes", {"type": "integer", "minimum": 1, "maximum": PREVIEW_BYTES})],
            )
        },
        "/api/v1/namespaces": {
            "get": _op(
                "Flows",
                "Namespaces with flow counts",
                {"200": _json({"type": "array", "items": {"type": "object"}}), "400": BAD},
            )
        },
    }
