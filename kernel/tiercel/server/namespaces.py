"""Namespace resources of the API, in Kestra's shape: the key/value store (``/api/v1/namespaces/{namespace}/kv``)
and namespace files (``/api/v1/namespaces/{namespace}/files``)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tiercel.server.app import UPLOAD_LIMIT, ApiError, Json, iso, media_type, read_body, svc

KV_LIMIT = 1 << 20
MAX_TTL = 100 * 365 * 86400
KV_TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")


def _namespace(request: Request) -> str:
    """The namespace of the request, which the caller must be allowed to touch with the route's role."""
    from tiercel.server.auth import allow

    namespace = request.path_params["namespace"]
    allow(request, namespace)
    return str(namespace)


def _inferred(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, (int, float)):
        return "NUMBER"
    return "STRING" if isinstance(value, str) else "JSON"


async def list_kv(request: Request) -> Response:
    entries = svc(request).rt.stores.kv.entries(_namespace(request), request.query_params.get("prefix", ""))
    return Json(
        [
            {"key": e.key, "type": e.type, "expirationDate": iso(e.expires_at), "updateDate": iso(e.updated_at)}
            for e in entries
        ]
    )


async def get_kv(request: Request) -> Response:
    namespace, key = _namespace(request), request.path_params["key"]
    entry = svc(request).rt.stores.kv.entry(namespace, key)
    if entry is None:
        raise ApiError(404, f"no key `{key}` in namespace {namespace}")
    return Json({"type": entry.type, "value": entry.value})


async def put_kv(request: Request) -> Response:
    """The body is the value as JSON (its type inferred: a string is STRING, a number NUMBER…);
    the ``type`` query parameter forces a type, the ``ttl`` header (ISO-8601) makes it expire."""
    from tiercel.core.kv import typed
    from tiercel.flow.inputs import parse_duration

    namespace, key = _namespace(request), request.path_params["key"]
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
    except Exception as exc:  # the type checks raise ValueError, parse_duration its own error: both say why
        raise ApiError(422, f"key `{key}`: {exc}") from None
    if seconds is not None and not 0 < seconds <= MAX_TTL:
        raise ApiError(422, f"key `{key}`: ttl must be positive and at most 100 years, got {ttl}")
    svc(request).rt.stores.kv.set(namespace, key, stored, ttl=seconds, type=kind)
    return Json(
        {"key": key, "type": kind, "value": stored, "expirationDate": iso(time.time() + seconds) if seconds else None}
    )


async def delete_kv(request: Request) -> Response:
    namespace, key = _namespace(request), request.path_params["key"]
    if not svc(request).rt.stores.kv.delete(namespace, key):
        raise ApiError(404, f"no key `{key}` in namespace {namespace}")
    return Response(status_code=204)


def _store(request: Request) -> Any:
    from tiercel.engine.namespace_files import NamespaceFiles

    return NamespaceFiles(svc(request).rt.storage)


def _file_path(request: Request) -> str:
    from tiercel.engine.namespace_files import NamespaceFileError, normalise

    try:
        return normalise(request.query_params.get("path", ""))
    except NamespaceFileError as exc:
        raise ApiError(400, str(exc)) from None


async def list_files(request: Request) -> Response:
    prefix = request.query_params.get("path", "").strip("/")
    names = await asyncio.to_thread(_store(request).list, _namespace(request))
    return Json([{"path": n} for n in names if not prefix or n.startswith(prefix + "/")])


async def get_file(request: Request) -> Response:
    namespace, path = _namespace(request), _file_path(request)
    try:
        with _store(request).open(namespace, path) as stream:
            data = await asyncio.to_thread(stream.read)
    except FileNotFoundError:
        raise ApiError(404, f"no file `{path}` in namespace {namespace}") from None
    return Response(data, media_type="application/octet-stream")


async def put_file(request: Request) -> Response:
    """Multipart, the file in a part named ``fileContent`` (Kestra's name)."""
    namespace, path = _namespace(request), _file_path(request)
    if media_type(request) != "multipart/form-data":
        raise ApiError(415, "send the file as multipart/form-data, in a part named `fileContent`")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > UPLOAD_LIMIT:
        raise ApiError(413, f"body too large: {length} bytes, at most {UPLOAD_LIMIT} accepted")
    try:
        form = await request.form(max_part_size=UPLOAD_LIMIT)
    except Exception as exc:
        raise ApiError(400, f"invalid form body: {exc}") from None
    try:
        part = form.get("fileContent")
        if isinstance(part, str) or part is None:
            raise ApiError(400, "no file part named `fileContent`")
        await asyncio.to_thread(_store(request).put, namespace, path, part.file)
    finally:
        await form.close()
    return Response(status_code=204)


async def delete_file(request: Request) -> Response:
    namespace, path = _namespace(request), _file_path(request)
    if not await asyncio.to_thread(_store(request).delete, namespace, path):
        raise ApiError(404, f"no file `{path}` in namespace {namespace}")
    return Response(status_code=204)


def routes(prefix: str) -> list[Route]:
    kv = f"{prefix}/namespaces/{{namespace}}/kv"
    files = f"{prefix}/namespaces/{{namespace}}/files"
    return [
        Route(kv, list_kv, methods=["GET"]),
        Route(f"{kv}/{{key}}", get_kv, methods=["GET"]),
        Route(f"{kv}/{{key}}", put_kv, methods=["PUT"]),
        Route(f"{kv}/{{key}}", delete_kv, methods=["DELETE"]),
        Route(f"{files}/directory", list_files, methods=["GET"]),
        Route(files, get_file, methods=["GET"]),
        Route(files, put_file, methods=["POST"]),
        Route(files, delete_file, methods=["DELETE"]),
    ]


def paths() -> dict[str, Any]:
    """The OpenAPI paths of these routes."""
    from tiercel.server.openapi import BAD, NOT_FOUND, NS, _json, _op, _path, _query

    key = _path("key")
    file_path = {
        "name": "path",
        "in": "query",
        "required": True,
        "schema": {"type": "string"},
        "description": "Path of the file in the namespace (`scripts/etl.py`).",
    }
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
        "/api/v1/namespaces/{namespace}/files/directory": {
            "get": _op(
                "Files",
                "List namespace files",
                {
                    "200": _json(
                        {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}}}}
                    ),
                    "400": BAD,
                },
                [NS, _query("path", {"type": "string"}, "Only files under this folder.")],
            )
        },
        "/api/v1/namespaces/{namespace}/files": {
            "get": _op(
                "Files",
                "Download a namespace file",
                {
                    "200": {
                        "description": "The file",
                        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "400": BAD,
                    "404": NOT_FOUND,
                },
                [NS, file_path],
            ),
            "post": _op(
                "Files",
                "Upload a namespace file",
                {
                    "204": {"description": "Stored"},
                    "400": BAD,
                    "413": _json({"type": "object"}, "Too large"),
                    "415": _json({"type": "object"}, "Not multipart"),
                },
                [NS, file_path],
                {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["fileContent"],
                                "properties": {"fileContent": {"type": "string", "format": "binary"}},
                            }
                        }
                    },
                },
            ),
            "delete": _op(
                "Files",
                "Delete a namespace file",
                {"204": {"description": "Deleted"}, "400": BAD, "404": NOT_FOUND},
                [NS, file_path],
            ),
        },
    }
