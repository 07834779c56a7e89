"""Who may call which route: authentication, roles per namespace prefix, the audit log.

Every route of the API has exactly one rule in :data:`RULES` (``create_app`` refuses a route
without one, and the permission-matrix test walks the table):

- ``public``: anyone (health, the API description, login);
- ``webhook``: the webhook's own key is the credential;
- ``any``: any authenticated caller; listings filter what they return to the caller's namespaces;
- a role (``viewer`` < ``runner`` < ``editor`` < ``admin``): the handler names the namespace the
  request touches with :func:`allow`; outside the caller's namespaces the answer is 404 (so
  names do not leak), inside them without the role it is 403.

Credentials: ``Authorization: Bearer <token>``, HTTP basic for users, or the UI's session
cookie (then a state-changing request must echo the session's CSRF token in ``X-CSRF-Token``).
Failed passwords (login and basic) and webhook keys are rate-limited per client (the ``limits``
library); tokens are 256 random bits, so wrong ones are simply refused. With authentication
off, every caller is ``anonymous`` with the admin role everywhere, and the request guard
(:mod:`tiercel.server.guard`) still keeps browsers of other sites out.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tiercel.backend.auth import ROLES, Grant, Principal

SESSION_COOKIE = "tiercel_session"
CSRF_HEADER = "x-csrf-token"
ANONYMOUS = Principal("anonymous", (Grant("admin", ""),))
WEBHOOK_PREFIX = "/api/v1/executions/webhook/"

p = "/api/v1"
ex = f"{p}/executions"
tr = f"{p}/triggers/{{namespace}}/{{flowId}}/{{triggerId}}"
#: (method, path) -> rule. A route missing here cannot be served.
RULES: dict[tuple[str, str], str] = {
    ("GET", f"{p}/health"): "public",
    ("GET", "/health/live"): "public",
    ("GET", "/health/ready"): "public",
    ("GET", "/metrics"): "any",  # with auth on, each caller sees the samples of its own namespaces
    ("GET", f"{p}/openapi.json"): "public",
    ("GET", f"{p}/docs"): "public",
    ("POST", f"{p}/auth/login"): "public",
    ("POST", f"{p}/auth/logout"): "public",
    ("GET", f"{p}/auth/me"): "public",
    ("GET", f"{p}/audit"): "admin",
    ("GET", f"{p}/cluster"): "admin",
    ("GET", f"{p}/auth/tokens"): "admin",
    ("POST", f"{p}/auth/tokens"): "admin",
    ("DELETE", f"{p}/auth/tokens/{{tokenId}}"): "admin",
    ("GET", f"{p}/namespaces/{{namespace}}/kv"): "viewer",
    ("GET", f"{p}/namespaces/{{namespace}}/kv/{{key}}"): "viewer",
    ("PUT", f"{p}/namespaces/{{namespace}}/kv/{{key}}"): "editor",
    ("DELETE", f"{p}/namespaces/{{namespace}}/kv/{{key}}"): "editor",
    ("GET", f"{p}/namespaces/{{namespace}}/files/directory"): "viewer",
    ("GET", f"{p}/namespaces/{{namespace}}/files"): "viewer",
    ("POST", f"{p}/namespaces/{{namespace}}/files"): "editor",
    ("DELETE", f"{p}/namespaces/{{namespace}}/files"): "editor",
    ("POST", f"{p}/flows/graph"): "any",
    ("GET", f"{p}/flows/{{namespace}}/{{id}}/graph"): "viewer",
    ("GET", f"{ex}/latest"): "any",
    ("GET", f"{ex}/{{executionId}}/graph"): "viewer",
    ("GET", f"{ex}/{{executionId}}/file"): "viewer",
    ("GET", f"{ex}/{{executionId}}/file/preview"): "viewer",
    ("GET", f"{p}/namespaces"): "any",
    ("GET", f"{p}/plugins"): "any",
    ("GET", f"{p}/plugins/schemas/flow"): "any",
    ("POST", f"{p}/flows"): "editor",
    ("POST", f"{p}/flows/validate"): "any",
    ("GET", f"{p}/flows/search"): "any",
    ("GET", f"{p}/flows/{{namespace}}"): "viewer",
    ("GET", f"{p}/flows/{{namespace}}/{{id}}"): "viewer",
    ("PUT", f"{p}/flows/{{namespace}}/{{id}}"): "editor",
    ("DELETE", f"{p}/flows/{{namespace}}/{{id}}"): "editor",
    ("GET", f"{p}/flows/{{namespace}}/{{id}}/revisions"): "viewer",
    ("GET", f"{ex}/search"): "any",
    ("GET", f"{ex}/webhook/{{namespace}}/{{flowId}}/{{key}}"): "webhook",
    ("POST", f"{ex}/webhook/{{namespace}}/{{flowId}}/{{key}}"): "webhook",
    ("PUT", f"{ex}/webhook/{{namespace}}/{{flowId}}/{{key}}"): "webhook",
    ("DELETE", f"{ex}/{{executionId}}/kill"): "runner",
    ("POST", f"{ex}/{{executionId}}/kill"): "runner",
    ("POST", f"{ex}/{{executionId}}/restart"): "runner",
    ("POST", f"{ex}/{{executionId}}/replay"): "runner",
    ("POST", f"{ex}/{{executionId}}/resume"): "runner",
    ("GET", f"{ex}/{{executionId}}/follow"): "viewer",
    ("POST", f"{ex}/{{namespace}}/{{flowId}}"): "runner",
    ("GET", f"{ex}/{{executionId}}"): "viewer",
    ("GET", f"{p}/logs/{{executionId}}"): "viewer",
    ("GET", f"{p}/logs/{{executionId}}/follow"): "viewer",
    ("GET", f"{p}/triggers/search"): "any",
    ("GET", f"{p}/triggers/{{namespace}}/{{flowId}}"): "viewer",
    ("POST", f"{tr}/backfill"): "runner",
    ("DELETE", f"{tr}/backfill"): "runner",
    ("POST", f"{tr}/backfill/pause"): "runner",
    ("POST", f"{tr}/backfill/unpause"): "runner",
    ("POST", f"{tr}/enable"): "editor",
    ("POST", f"{tr}/disable"): "editor",
}


@dataclass
class AuthSettings:
    """How the API authenticates; ``enabled`` False lets every caller in as ``anonymous`` admin."""

    enabled: bool = False
    session_lifetime: float = 12 * 3600
    #: Failed passwords (login, HTTP basic) and wrong webhook keys a client may send, in ``limits`` notation.
    failure_rate: str = field(default_factory=lambda: os.environ.get("TIERCEL_AUTH_FAILURE_RATE", "10/minute"))
    #: Seconds a verified HTTP basic password is remembered (argon2 costs tens of ms per check).
    basic_cache_seconds: float = 30.0


class Throttle:
    """Failed attempts per client and purpose, in a moving window (``10/minute``)."""

    def __init__(self, rate: str) -> None:
        from limits import parse
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.item = parse(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def blocked(self, purpose: str, client: str) -> bool:
        return not self.limiter.test(self.item, purpose, client)

    def failed(self, purpose: str, client: str) -> None:
        self.limiter.hit(self.item, purpose, client)

    def retry_after(self, purpose: str, client: str) -> int:
        reset, _ = self.limiter.get_window_stats(self.item, purpose, client)
        return max(1, int(reset - time.time()) + 1)


class Auth:
    """The per-app authenticator: settings, the store, the throttle and the basic-auth cache."""

    def __init__(self, settings: AuthSettings, store: Any) -> None:
        self.settings, self.store = settings, store
        self.throttle = Throttle(settings.failure_rate)
        self._basic: dict[str, tuple[Principal, float]] = {}

    def check_throttle(self, purpose: str, client: str) -> None:
        from tiercel.server.app import ApiError

        if self.throttle.blocked(purpose, client):
            wait = self.throttle.retry_after(purpose, client)
            raise ApiError(
                429,
                f"too many failed attempts from this client; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def authenticate(self, request: Request) -> Principal | None:
        """The caller, None when no credentials came; a 401 (or 429) ApiError for wrong ones."""
        from tiercel.server.app import ApiError

        if not self.settings.enabled:
            return ANONYMOUS
        header = request.headers.get("authorization")
        cookie = request.cookies.get(SESSION_COOKIE)
        if header is None and cookie is None:
            return None
        principal = None
        scheme, _, value = (header or "").partition(" ")
        if header is not None and scheme.lower() == "bearer":
            principal = self.store.token(value.strip())  # 256 random bits: guessing needs no throttle
        elif header is not None and scheme.lower() == "basic":
            client = _client(request)
            self.check_throttle("password", client)
            principal = self._basic_login(value.strip())
            if principal is None:
                self.throttle.failed("password", client)
        elif header is None and cookie is not None:
            principal = self.store.session(cookie)
        if principal is None:
            raise ApiError(
                401,
                "invalid credentials: the token, password or session is wrong, expired or revoked",
                headers={"WWW-Authenticate": 'Bearer realm="tiercel"'},
            )
        return principal

    def _basic_login(self, value: str) -> Principal | None:
        try:
            name, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except ValueError:
            return None
        key = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        cached = self._basic.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        principal = self.store.login(name, password)
        if principal is not None:
            if len(self._basic) > 1000:
                self._basic.clear()
            self._basic[key] = (principal, time.monotonic() + self.settings.basic_cache_seconds)
        return principal


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


def principal_of(request: Request) -> Principal:
    return request.state.principal  # type: ignore[no-any-return]


def allow(request: Request, namespace: str, missing: str | None = None) -> None:
    """Let the request touch *namespace* with its route's role, or answer 404 (outside the caller's
    namespaces, with *missing*: the message of a resource that does not exist, so nothing leaks)
    or 403 (inside them, without the role)."""
    from tiercel.server.app import ApiError

    request.state.namespace = namespace
    principal, rule = principal_of(request), request.state.rule
    rank = principal.role_on(namespace)
    if rank < 0:
        raise ApiError(404, missing or f"namespace {namespace} not found")
    if rule in ROLES and rank < ROLES.index(rule):
        raise ApiError(403, f"your role on {namespace} is {ROLES[rank]}; this needs {rule}")


def check_child_flows(request: Request, flow: Any) -> None:
    """A flow may start child flows (``core.Subflow``, ``core.ForEachItem``, any task with ``namespace`` and
    ``flowId``) only in namespaces where whoever deploys it may run flows; checked at each deploy."""
    from tiercel.server.app import ApiError

    principal, runner = principal_of(request), ROLES.index("runner")
    for task, _, _ in flow.walk():
        target, child = getattr(task, "namespace", None), getattr(task, "flowId", None)
        if not isinstance(target, str) or child is None:
            continue
        if "{{" in target:
            if principal.scopes("runner") is not None:
                raise ApiError(403, f"task `{task.id}` starts a flow in a namespace given by an expression: only a "
                                    f"caller who may run flows in every namespace may deploy that")
        elif principal.role_on(target) < runner:
            raise ApiError(403, f"task `{task.id}` starts flows in `{target}`, where you may not run flows")


def visible(request: Request, namespace: str) -> bool:
    """Whether a listing may show an item of *namespace* to the caller."""
    return principal_of(request).role_on(namespace) >= 0


def secured(endpoint: Any, rule: str) -> Any:
    """*endpoint* behind its rule: authenticate, check the role and CSRF, then run it."""
    from tiercel.server.app import ApiError

    async def handler(request: Request) -> Response:
        auth: Auth = request.app.state.auth
        request.state.rule = rule
        if rule in ("public", "webhook"):
            request.state.principal = ANONYMOUS if not auth.settings.enabled else None
            return await endpoint(request)
        principal = auth.authenticate(request)
        if principal is None:
            raise ApiError(
                401,
                "authentication required: send `Authorization: Bearer <token>` "
                "(tiercel tokens create), HTTP basic credentials, or log in",
                headers={"WWW-Authenticate": 'Bearer realm="tiercel"'},
            )
        request.state.principal = principal
        if principal.session is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
            import hmac

            if not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), principal.session):
                raise ApiError(403, "missing or wrong X-CSRF-Token header (the csrfToken of the login answer)")
        if rule in ROLES and max((ROLES.index(g.role) for g in principal.grants), default=-1) < ROLES.index(rule):
            raise ApiError(403, f"this needs the {rule} role")
        return await endpoint(request)

    return handler


# --- the audit log ---------------------------------------------------------------------------


class AuditLog:
    """ASGI middleware recording every state-changing call once answered: who, what, where from, status.

    Webhook keys in paths are masked; bodies and headers are never recorded.
    """

    def __init__(self, app: Any, store: Any) -> None:
        self.app, self.store = app, store

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            state = scope.get("state") or {}
            principal = state.get("principal")
            path, namespace = scope["path"], state.get("namespace")
            actor = principal.name if principal is not None else state.get("actor", "-")
            if path.startswith(WEBHOOK_PREFIX):
                parts = path.split("/")
                path, namespace, actor = "/".join(parts[:-1]) + "/***", parts[-3] if len(parts) > 3 else None, "webhook"
            client = scope.get("client")
            try:
                self.store.record(
                    actor, scope["method"], path, namespace, status["code"], client[0] if client else None
                )
            except Exception:  # the audit must not turn an answer into an error
                import logging

                logging.getLogger("tiercel.server").exception("could not record an audit entry")


# --- the auth endpoints ----------------------------------------------------------------------


_NO_STORE = {"Cache-Control": "no-store"}


def _me(principal: Principal, enabled: bool) -> dict[str, Any]:
    return {
        "username": principal.name,
        "authentication": enabled,
        "grants": [{"role": g.role, "namespace": g.namespace} for g in principal.grants],
        **({"csrfToken": principal.session} if principal.session else {}),
    }


async def login(request: Request) -> Response:
    """``POST /api/v1/auth/login`` with ``{"username", "password"}``: a session cookie and a CSRF token."""
    from tiercel.server.app import ApiError, Json, json_object

    auth: Auth = request.app.state.auth
    if not auth.settings.enabled:
        raise ApiError(409, "authentication is off on this server (start it with --auth)")
    client = _client(request)
    auth.check_throttle("password", client)
    body = await json_object(request, limit=64 << 10, required=True)
    name, password = body.get("username"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise ApiError(400, 'send {"username": …, "password": …}')
    request.state.actor = name
    principal = auth.store.login(name, password)
    if principal is None:
        auth.throttle.failed("password", client)
        raise ApiError(401, "wrong user name or password")
    session_id, csrf = auth.store.open_session(name, auth.settings.session_lifetime)
    request.state.principal = principal
    response = Json(_me(Principal(name, principal.grants, session=csrf), True), headers=_NO_STORE)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(auth.settings.session_lifetime),
        path="/",
        secure=_secure_cookie(request),
        httponly=True,
        samesite="strict",
    )
    return response


def _secure_cookie(request: Request) -> bool:
    """``Secure`` except over plain HTTP to a loopback address (no one can listen there, and not every
    browser keeps a Secure cookie from http://127.0.0.1); behind a TLS proxy the scheme is https."""
    from tiercel.server.guard import _is_loopback

    return request.url.scheme == "https" or not _is_loopback((request.url.hostname or "").strip("[]"))


async def logout(request: Request) -> Response:
    """``POST /api/v1/auth/logout``: the session ends and its cookie is cleared."""
    auth: Auth = request.app.state.auth
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is not None and auth.settings.enabled:
        principal = auth.store.session(cookie)
        if principal is not None:
            request.state.principal = principal
            auth.store.close_session(cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_secure_cookie(request), httponly=True, samesite="strict")
    return response


async def me(request: Request) -> Response:
    """``GET /api/v1/auth/me``: who the caller is, their roles, and whether authentication is on.

    Public, so the UI can ask before anyone logged in: without credentials the answer has no
    ``username`` (wrong credentials still answer 401)."""
    from tiercel.server.app import Json

    auth: Auth = request.app.state.auth
    if not auth.settings.enabled:
        return Json(_me(ANONYMOUS, False), headers=_NO_STORE)
    principal = auth.authenticate(request)  # public: no credentials is an answer (the UI then logs in)
    if principal is None:
        return Json({"username": None, "authentication": True, "grants": []}, headers=_NO_STORE)
    request.state.principal = principal
    return Json(_me(principal, True), headers=_NO_STORE)


async def audit(request: Request) -> Response:
    """``GET /api/v1/audit``: state-changing calls, newest first, in the namespaces the caller administers."""
    from tiercel.server.app import Json, date_param, int_param, query

    principal = principal_of(request)
    store = request.app.state.auth.store
    scopes = principal.scopes("admin")
    return Json(
        store.audit(
            query(request, "actor") or None,
            query(request, "namespace") or None,
            date_param(request, "since"),
            scopes,
            int_param(request, "size", 100, 1, 10000),
        )
    )


async def list_tokens(request: Request) -> Response:
    """``GET /api/v1/auth/tokens``: the tokens of the namespaces the caller administers (never their secret)."""
    from tiercel.server.app import Json

    principal = principal_of(request)
    rows = request.app.state.auth.store.tokens()
    return Json([r for r in rows if principal.role_on(r["namespace"]) >= ROLES.index("admin")])


async def create_token(request: Request) -> Response:
    """``POST /api/v1/auth/tokens`` with ``{"role", "namespace", "expires", "name"}``: the token, shown once."""
    from tiercel.backend.auth import AuthError
    from tiercel.flow.inputs import parse_duration
    from tiercel.server.app import ApiError, Json, json_object

    body = await json_object(request, limit=64 << 10, required=True)
    role, namespace, expires, name = (body.get(k) for k in ("role", "namespace", "expires", "name"))
    namespace = namespace or ""
    if not isinstance(role, str) or not isinstance(namespace, str) or not isinstance(name, str | None):
        raise ApiError(400, 'send {"role": "viewer|runner|editor|admin", "namespace": "company.team", '
                            '"expires": "P90D", "name": "what it is for"}')
    request.state.namespace = namespace or None
    principal = principal_of(request)
    if principal.role_on(namespace) < ROLES.index("admin"):
        raise ApiError(403, f"you do not administer {namespace or 'every namespace'}: a token cannot reach further "
                            f"than its maker")
    expires_at = None
    if expires is not None:
        try:
            expires_at = time.time() + parse_duration(expires).total_seconds()
        except Exception:
            raise ApiError(400, f"`expires` must be an ISO-8601 duration such as P90D, got {expires!r}") from None
    try:
        token_id, token = request.app.state.auth.store.create_token(role, namespace, name, principal.name, expires_at)
    except AuthError as exc:
        raise ApiError(400, str(exc)) from None
    return Json({"id": token_id, "token": token, "role": role, "namespace": namespace, "expires": expires_at},
                headers=_NO_STORE)


async def revoke_token(request: Request) -> Response:
    """``DELETE /api/v1/auth/tokens/{tokenId}``: the token stops working at once."""
    from tiercel.server.app import ApiError

    token_id = request.path_params["tokenId"]
    store = request.app.state.auth.store
    row = next((r for r in store.tokens() if r["id"] == token_id and not r["revoked"]), None)
    if row is None or principal_of(request).role_on(row["namespace"]) < ROLES.index("admin"):
        raise ApiError(404, f"token {token_id} not found")
    request.state.namespace = row["namespace"] or None
    store.revoke_token(token_id)
    return Response(status_code=204)
