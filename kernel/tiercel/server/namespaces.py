"""Namespace resources of the API, in Kestra's shape: the key/value store (``/api/v1/namespaces/{namespace}/kv``)."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tiercel.server.app import ApiError, Json, iso, media_type, read_body, svc

KV_LIMIT = 1 << 20
MAX_TTL = 100 * 365 * 86400
KV_TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")


def _inferred(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, (int, float)):
        return "NUMBER"
    return "STRING" if isinstance(value, str) else "JSON"


async def list_kv(request: Request) -> Response:
    entries = svc(request).rt.stores.kv.entries(
        request.path_params["namespace"], request.query_params.get("prefix", "")
    )
    return Json(
        [
            {"key": e.key, "type": e.type, "expirationDate": iso(e.expires_at), "updateDate": iso(e.updated_at)}
            for e in entries
        ]
    )


async def get_kv(request: Request) -> Response:
    namespace, key = request.path_params["namespace"], request.path_params["key"]
    entry = svc(request).rt.stores.kv.entry(namespace, key)
    if entry is None:
        raise ApiError(404, f"no key `{key}` in namespace {namespace}")
    return Json({"type": entry.type, "value": entry.value})


async def put_kv(request: Request) -> Response:
    """The body is the value as JSON (its type inferred: a string is STRING, a number NUMBER…);
    the ``type`` query parameter forces a type, the ``ttl`` header (ISO-8601) makes it expire."""
    from tiercel.core.kv import typed
    from tiercel.flow.inputs import parse_duration

    namespace, key = request.path_params["namespace"], request.path_params["key"]
    body = await read_body(request, KV_LIMIT)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the value is not valid UTF-8") from None
    if media_type(request) != "application/json":
        raise ApiError(
            415, f"send the value as JSON with `Content-Type: application/json` (got {media_type(request)!r})"
        )
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ApiError(400, f"invalid JSON value: {exc}") from None
    kind = (request.query_params.get("type") or _inferred(value)).upper()
    if kind not in KV_TYPES:
        raise ApiError(400, f"unknown type {kind!r}; one of {', '.join(KV_TYPES)}")
    ttl = request.headers.get("ttl")
    try:
        stored = typed(value, kind)
        seconds = parse_duration(ttl).total_seconds() if ttl else None
    except (ValueError, OverflowError) as exc:
        raise ApiError(422, f"key `{key}`: {exc}") from None
    if seconds is not None and not 0 < seconds <= MAX_TTL:
        raise ApiError(422, f"key `{key}`: ttl must be positive and at most 100 years, got {ttl}")
    svc(request).rt.stores.kv.set(namespace, key, stored, ttl=seconds, type=kind)
    return Json(
        {"key": key, "type": kind, "value": stored, "expirationDate": iso(time.time() + seconds) if seconds else None}
    )


async def delete_kv(request: Request) -> Response:
    namespace, key = request.path_params["namespace"], request.path_params["key"]
    if not svc(request).rt.stores.kv.delete(namespace, key):
        raise ApiError(404, f"no key `{key}` in namespace {namespace}")
    return Response(status_code=204)


def routes(prefix: str) -> list[Route]:
    kv = f"{prefix}/namespaces/{{namespace}}/kv"
    return [
        Route(kv, list_kv, methods=["GET"]),
        Route(f"{kv}/{{key}}", get_kv, methods=["GET"]),
        Route(f"{kv}/{{key}}", put_kv, methods=["PUT"]),
        Route(f"{kv}/{{key}}", delete_kv, methods=["DELETE"]),
    ]


def paths() -> dict[str, Any]:
    """The OpenAPI paths of these routes."""
    from tiercel.server.openapi import BAD, NOT_FOUND, NS, _json, _op, _path, _query

    key = _path("key")
    entry = {"type": "object", "properties": {"type": {"type": "string", "enum": list(KV_TYPES)}, "value": {}}}
    return {
        "/api/v1/namespaces/{namespace}/kv": {
            "get": _op(
                "KV",
                "List keys",
                {
                    "200": _json(
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "key": {"type": "string"},
                                    "type": {"type": "string"},
                                    "expirationDate": {"type": "string", "nullable": True},
                                    "updateDate": {"type": "string"},
                                },
                            },
                        }
                    ),
                    "400": BAD,
                },
                [NS, _query("prefix", {"type": "string"}, "Only keys starting with this.")],
            )
        },
        "/api/v1/namespaces/{namespace}/kv/{key}": {
            "get": _op("KV", "Get a value", {"200": _json(entry), "404": NOT_FOUND}, [NS, key]),
            "put": _op(
                "KV",
                "Set a value",
                {
                    "200": _json({"type": "object"}),
                    "400": BAD,
                    "413": _json({"type": "object"}, "Too large"),
                    "415": _json({"type": "object"}, "Not JSON"),
                    "422": _json({"type": "object"}, "Invalid value"),
                },
                [
                    NS,
                    key,
                    _query("type", {"type": "string", "enum": list(KV_TYPES)}, "Type of the value (inferred)."),
                    {
                        "name": "ttl",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Time to live, ISO-8601 (PT1H).",
                    },
                ],
                {"required": True, "content": {"application/json": {"schema": {}}}},
            ),
            "delete": _op("KV", "Delete a key", {"204": {"description": "Deleted"}, "404": NOT_FOUND}, [NS, key]),
        },
    }
