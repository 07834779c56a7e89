"""One HTTP exchange on httpx, shared by the task and trigger types.

The response body is streamed: up to ``INLINE_LIMIT`` bytes stay in memory and become the
``body`` output; a larger (or binary) body is spilled to a temporary file as it arrives and
uploaded to internal storage, and its ``tiercel://`` URI is the ``uri`` output instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiercel import RunContext, TaskError

if TYPE_CHECKING:
    from tiercel_http.components import HttpCall

#: Bodies larger than this go to internal storage instead of the ``body`` output.
INLINE_LIMIT = 1 << 20
#: Characters of a failed response's body quoted in the error.
EXCERPT = 500
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0


@dataclass
class Reply:
    """What came back: status, headers (lower-case names, lists of values), body or stored file."""

    code: int
    reason: str
    headers: dict[str, list[str]]
    body: Any = None
    uri: str | None = None
    length: int = 0
    digest: str = ""
    excerpt: str = ""


def where(uri: str) -> str:
    """``host:port`` of *uri*, for error messages (never the credentials)."""
    import httpx

    url = httpx.URL(uri)
    port = url.port or {"http": 80, "https": 443}.get(url.scheme, "")
    return f"{url.host}:{port}"


def safe(uri: str) -> str:
    """*uri* without ``user:password@``."""
    return re.sub(r"//[^/@]*@", "//", uri, count=1)


async def exchange(ctx: RunContext, call: HttpCall, *, store: str = "auto",
                   name: str | Callable[[dict[str, list[str]]], str] = "body") -> Reply:
    """Send *call*'s request and read the response.

    ``store="auto"`` keeps small text bodies inline and stores the rest; ``"always"``
    stores every body (downloads). *name* is the stored file's name, or a function of the
    response headers giving it. Raises TaskError for transport failures, and for a
    status of 400 or more unless ``allowFailed``.
    """
    import httpx

    options = call.options
    connect = options.connectTimeout.total_seconds() if options and options.connectTimeout else DEFAULT_CONNECT_TIMEOUT
    read = options.readTimeout.total_seconds() if options and options.readTimeout else DEFAULT_READ_TIMEOUT
    follow = options.followRedirects if options else True
    timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
    headers = {k: v for k, v in (call.headers or {}).items()}
    traceparent = getattr(ctx, "traceparent", None)
    if traceparent and not any(k.lower() == "traceparent" for k in headers):  # W3C trace context
        headers["traceparent"] = traceparent
    auth = call.auth or (options.auth if options else None)
    client_auth = None
    if auth is not None:
        if auth.type == "BEARER":
            headers["Authorization"] = f"Bearer {auth.token}"
        else:
            client_auth = httpx.BasicAuth(auth.username or "", auth.password or "")
    request = _payload(ctx, call, headers)
    uploads = [part[1] for part in request.get("files", {}).values() if hasattr(part[1], "close")]
    method, target = call.method, call.uri
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=follow, auth=client_auth) as client:
            url = httpx.URL(target).copy_merge_params(call.params) if call.params else target
            async with client.stream(method, url, headers=headers, **request) as response:
                reply = await _read(ctx, response, store, name)
    except httpx.ConnectTimeout:
        raise TaskError(f"cannot connect to {where(target)}: no answer within the connect timeout of {connect:g} s "
                        f"(options.connectTimeout); is the host reachable?") from None
    except httpx.ConnectError as exc:
        raise TaskError(f"cannot connect to {where(target)}: {exc or type(exc).__name__} "
                        f"(connect timeout {connect:g} s); is the server running and the address right?") from None
    except httpx.ReadTimeout:
        raise TaskError(f"{where(target)} sent nothing for {read:g} s (options.readTimeout) after {method} "
                        f"{safe(target)}") from None
    except httpx.TooManyRedirects:
        raise TaskError(f"{method} {safe(target)}: too many redirects") from None
    except httpx.UnsupportedProtocol as exc:
        raise TaskError(f"property `uri`: {exc} (expected http:// or https://)") from None
    except httpx.HTTPError as exc:
        raise TaskError(f"{method} {safe(target)} failed: {type(exc).__name__}: {exc}") from None
    finally:
        for upload in uploads:
            upload.close()
    if reply.code >= 400 and not call.failed_allowed:
        raise TaskError(f"{method} {safe(target)} returned {reply.code} {reply.reason}: {reply.excerpt or '(empty body)'}"
                        " — set `allowFailed: true` to accept error statuses")
    return reply


def _payload(ctx: RunContext, call: HttpCall, headers: dict[str, str]) -> dict[str, Any]:
    """httpx keyword arguments for the body: raw ``body``, or ``formData`` (multipart with files)."""
    has_type = any(k.lower() == "content-type" for k in headers)
    if call.formData is not None:
        files = {k: v for k, v in call.formData.items() if isinstance(v, str) and v.startswith("tiercel://")}
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in call.formData.items() if k not in files}
        if files or (call.contentType or "").startswith("multipart/"):
            parts: dict[str, Any] = {k: (None, v) for k, v in fields.items()}
            parts.update({k: (Path(uri).name, ctx.open_file(uri)) for k, uri in files.items()})
            return {"files": parts}
        return {"data": fields}
    if call.body is None:
        return {}
    if call.contentType and not has_type:
        headers["Content-Type"] = call.contentType
    elif not has_type:
        try:
            json.loads(call.body)
            headers["Content-Type"] = "application/json"
        except ValueError:
            headers["Content-Type"] = "text/plain; charset=utf-8"
    return {"content": call.body.encode()}


async def _read(ctx: RunContext, response: Any, store: str, name: Any) -> Reply:
    digest = hashlib.sha256()
    head = bytearray()  # the first bytes, quoted in errors
    memory = bytearray()  # the whole body while it stays under INLINE_LIMIT
    length = 0
    with tempfile.TemporaryDirectory(prefix="tiercel-http-") as tmp:
        path = Path(tmp) / "body"
        spill = None
        try:
            async for chunk in response.aiter_bytes():
                digest.update(chunk)
                length += len(chunk)
                if len(head) < EXCERPT * 4:
                    head += chunk[:EXCERPT * 4 - len(head)]
                if spill is None and (store == "always" or len(memory) + len(chunk) > INLINE_LIMIT):
                    spill = open(path, "wb")
                    spill.write(memory)
                    memory = bytearray()
                if spill is not None:
                    spill.write(chunk)
                else:
                    memory += chunk
        finally:
            if spill is not None:
                spill.close()
        charset = response.charset_encoding or "utf-8"
        reply = Reply(code=response.status_code, reason=response.reason_phrase,
                      headers={k: response.headers.get_list(k) for k in response.headers.keys()},
                      length=length, digest=digest.hexdigest(),
                      excerpt=bytes(head).decode(charset, errors="replace")[:EXCERPT])
        stored = spill is not None
        if not stored and memory:
            text = _text(bytes(memory), charset)
            if text is None:  # binary: keep it as a file, not as mangled text
                path.write_bytes(bytes(memory))
                stored = True
            else:
                reply.body = _decode(text, response.headers.get("content-type", ""))
        if stored:
            name = name(reply.headers) if callable(name) else name
            reply.uri = await asyncio.to_thread(ctx.put_file, path, name)
    return reply


def _text(data: bytes, charset: str) -> str | None:
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return None


def _decode(text: str, content_type: str) -> Any:
    """JSON bodies (``application/json``, ``…+json``) parsed; anything else as text."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
