"""Requests a browser page could forge never reach the API (CSRF and DNS rebinding).

A server on loopback without authentication is still reachable from any web page the
developer opens: the page can POST across origins, and a DNS name rebound to 127.0.0.1
makes its requests same-origin. This ASGI middleware, in front of every route, refuses:

- a ``Host`` that is neither a loopback name, the address the server listens on, nor one
  configured with ``--allowed-hosts`` / ``TIERCEL_ALLOWED_HOSTS`` (DNS rebinding);
- a state-changing request (not GET/HEAD/OPTIONS) whose ``Origin`` is another site, or that
  the browser marks ``Sec-Fetch-Site: cross-site``/``same-site`` (cross-site request forgery);
- a state-changing request whose body is of a type a browser sends cross-origin without a
  CORS preflight (``text/plain``, ``application/x-www-form-urlencoded``).

Webhooks are exempt from the last two: a caller proves itself with the webhook's key.
CORS stays off unless ``--cors-origins`` / ``TIERCEL_CORS_ORIGINS`` names the origins allowed.
Every response carries headers that keep browsers from sniffing, framing or leaking it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Body types a browser may send cross-origin without asking first (a "simple request").
SIMPLE_BODY_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})
WEBHOOK_PREFIX = "/api/v1/executions/webhook/"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def _split_host(value: str) -> str:
    """The host name of a ``Host`` header or an origin's authority, lower case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8080
        return value[1:value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.rsplit(":", 1)[0]
    return value


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class OriginPolicy:
    """Which ``Host`` names and cross-origin callers this server accepts."""

    bind_host: str = "127.0.0.1"
    #: Extra host names (``*`` accepts any: only behind a proxy that checks Host itself).
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    #: Origins (``https://ui.example.com``) allowed to call the API from a browser; CORS is off when empty.
    cors_origins: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, bind_host: str, allowed_hosts: Iterable[str] = (), cors_origins: Iterable[str] = ()) -> OriginPolicy:
        return cls(bind_host.strip().lower().strip("[]"),
                   frozenset(_split_host(h) if h.strip() != "*" else "*" for h in allowed_hosts if h.strip()),
                   frozenset(o.strip().rstrip("/").lower() for o in cors_origins if o.strip()))

    def host_allowed(self, host_header: str | None) -> bool:
        if not host_header:
            return True  # HTTP/1.0 without Host: no browser sends that, so no rebinding either
        host = _split_host(host_header)
        if "*" in self.allowed_hosts or host in self.allowed_hosts or _is_loopback(host):
            return True
        if self.bind_host in WILDCARD_ADDRESSES:
            # every interface: an IP literal cannot be rebound; names must be configured
            return _is_ip(host)
        return host == self.bind_host

    def origin_allowed(self, origin: str, host_header: str | None, scheme: str) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if origin in self.cors_origins:
            return True
        if origin == "null" or "://" not in origin or not host_header:
            return False
        return origin == f"{scheme}://{host_header.strip().lower()}" or (
            # a proxy that terminates TLS forwards http: accept the same authority over https
            origin == f"https://{host_header.strip().lower()}")


class RequestGuard:
    """ASGI middleware applying an :class:`OriginPolicy` to every HTTP request."""

    def __init__(self, app: ASGIApp, policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k in (b"host", b"origin", b"sec-fetch-site", b"content-type", b"content-length",
                            b"transfer-encoding")}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            status, message = refusal
            await _reply(send, status, message)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k, v) for k, v in SECURITY_HEADERS if k not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, message) when the request must be refused, else None."""
        host = headers.get("host")
        if not self.policy.host_allowed(host):
            return 400, (f"Host `{host}` is not allowed: this server answers to loopback names and "
                         f"{self.policy.bind_host or 'its own address'}; add the name with "
                         f"`tiercel server --allowed-hosts {_split_host(host or '')}` (or TIERCEL_ALLOWED_HOSTS)")
        if scope["method"] in SAFE_METHODS or scope["path"].startswith(WEBHOOK_PREFIX):
            return None
        origin = headers.get("origin")
        scheme = scope.get("scheme", "http")
        if origin is not None and not self.policy.origin_allowed(origin, host, scheme):
            return 403, (f"cross-origin request refused: Origin `{origin}` is not this server; to call the API "
                         f"from that page, start the server with `--cors-origins {origin}` (or TIERCEL_CORS_ORIGINS)")
        site = headers.get("sec-fetch-site")
        if site in ("cross-site", "same-site") and origin is None:
            return 403, f"cross-origin request refused (Sec-Fetch-Site: {site})"
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        has_body = headers.get("content-length", "0") not in ("0", "") or "transfer-encoding" in headers
        if has_body and kind in SIMPLE_BODY_TYPES:
            return 415, (f"`Content-Type: {kind}` is refused on state-changing requests (a browser page on any "
                         f"site could send it): send application/json, application/x-yaml or multipart/form-data")
        return None


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def wrap(app: ASGIApp, policy: OriginPolicy) -> ASGIApp:
    """*app* behind the guard, and behind Starlette's CORS handling when origins are configured."""
    if policy.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app = CORSMiddleware(app, allow_origins=sorted(policy.cors_origins), allow_credentials=True,
                             allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=["*"], max_age=600)
    return RequestGuard(app, policy)
