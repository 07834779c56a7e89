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


def routes() -> list[Route]:
    p = "/api/v1"
    return [
        Route(f"{p}/flows/graph", graph_of_source, methods=["POST"]),
        Route(f"{p}/flows/{{namespace}}/{{id}}/graph", graph_of_flow, methods=["GET"]),
        Route(f"{p}/executions/latest", latest_executions, methods=["GET"]),
        Route(f"{p}/executions/{{executionId}}/graph", graph_of_execution, methods=["GET"]),
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
        "/api/v1/namespaces": {
            "get": _op(
                "Flows",
                "Namespaces with flow counts",
                {"200": _json({"type": "array", "items": {"type": "object"}}), "400": BAD},
            )
        },
    }
