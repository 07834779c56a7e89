"""The permission matrix: every operation of the OpenAPI description x every role x in and out of scope.

One server with authentication on; tokens for each role on ``company.team``. Out of scope means
the same request on ``other.ns``: it must answer 404 (a name outside one's namespaces does not
leak), while a role too low inside the scope answers 403 and no credentials 401. The request
table below must name every operation: a new route without a row here (or without a rule in
``tiercel.server.auth.RULES``) fails this test.
"""

from __future__ import annotations

import itertools

import pytest

from tiercel.backend.auth import ROLES
from tiercel.server.auth import RULES
from tiercel.server.openapi import spec

IN, OUT = "company.team", "other.ns"
FLOW = """\
id: app
namespace: {ns}
tasks:
  - {{id: say, type: core.Log, message: hi}}
triggers:
  - {{id: hook, type: core.Webhook, key: key-{key}-123456}}
  - {{id: nightly, type: core.Schedule, cron: "0 2 * * *", timezone: UTC}}
"""
DOOMED = "id: doomed\nnamespace: {ns}\ntasks:\n  - {{id: say, type: core.Log, message: bye}}\n"
YAML = {"Content-Type": "application/x-yaml"}
_new = itertools.count()


def _request(method: str, path: str, ns: str, ids: dict[str, str]) -> tuple[str, dict]:
    """The URL and httpx arguments of one valid request of the operation on namespace *ns*."""
    url = (path.replace("{namespace}", ns).replace("{id}", "app").replace("{flowId}", "app")
           .replace("{triggerId}", "nightly").replace("{executionId}", ids[ns])
           .replace("{key}", f"key-{ns}-123456").replace("{tokenId}", ids["token"]))
    kw: dict = {}
    if (method, path) == ("POST", "/api/v1/flows"):
        kw = {"content": DOOMED.format(ns=ns).replace("doomed", f"new{next(_new)}"), "headers": YAML}
    elif (method, path) == ("PUT", "/api/v1/flows/{namespace}/{id}"):
        kw = {"content": FLOW.format(ns=ns, key=ns), "headers": YAML}
    elif (method, path) == ("DELETE", "/api/v1/flows/{namespace}/{id}"):
        url = url.replace("/app", "/doomed")
    elif path == "/api/v1/flows/validate":
        kw = {"content": DOOMED.format(ns=ns), "headers": YAML}
    elif (method, path) == ("POST", "/api/v1/auth/tokens"):
        kw = {"json": {"role": "viewer", "namespace": ns, "expires": "PT1H"}}
    elif path == "/api/v1/auth/login":
        kw = {"json": {"username": "ada", "password": "correct horse"}}
    elif path.endswith("/backfill") and method == "POST":
        kw = {"json": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}}
    elif method == "POST" and not path.endswith("/logout"):
        kw = {"json": {}}
    return url, kw


#: Allowed requests that may still answer 404 for a reason of their own (no backfill is in progress).
OWN_404 = {("DELETE", "/api/v1/triggers/{namespace}/{flowId}/{triggerId}/backfill"),
           ("POST", "/api/v1/triggers/{namespace}/{flowId}/{triggerId}/backfill/pause"),
           ("POST", "/api/v1/triggers/{namespace}/{flowId}/{triggerId}/backfill/unpause"),
           ("GET", "/api/v1/namespaces/{namespace}/kv/{key}"), ("DELETE", "/api/v1/namespaces/{namespace}/kv/{key}"),
           ("GET", "/api/v1/namespaces/{namespace}/files"), ("DELETE", "/api/v1/namespaces/{namespace}/files")}


def _namespaced(method: str, path: str) -> bool:
    return "/webhook/" not in path and ("{namespace}" in path or "{executionId}" in path
                                        or (method, path) == ("POST", "/api/v1/flows"))


def _issue_role(method: str, path: str) -> str:
    """The role the issue gives each namespaced operation: viewer reads; runner starts, kills, restarts,
    resumes and backfills; editor deploys, deletes, switches triggers and writes KV and namespace files."""
    if method == "GET":
        return "viewer"
    if path.startswith(("/api/v1/flows", "/api/v1/namespaces")) or path.endswith(("/enable", "/disable")):
        return "editor"
    return "runner"


def test_rules_follow_the_documented_roles():
    for (method, path), rule in RULES.items():
        if _namespaced(method, path):
            assert rule == _issue_role(method, path), (method, path)
        else:
            assert rule in ("public", "webhook", "any") or path in ("/api/v1/audit", "/api/v1/cluster") or path.startswith(
                "/api/v1/auth/tokens") and rule == "admin", (method, path)


def _expected(rule: str, role: str | None, in_scope: bool) -> str:
    """"ok", or the status the request must get."""
    if rule in ("public", "webhook"):
        return "ok"
    if role is None:
        return "401"
    if rule == "any":
        return "ok"
    enough = ROLES.index(role) >= ROLES.index(rule)
    if not enough:
        return "403"
    return "ok" if in_scope else "404"


@pytest.mark.slow
def test_every_route_every_role_in_and_out_of_scope(secure_server, h):
    server = secure_server
    admin = server.client()
    admin.headers["Authorization"] = f"Bearer {h.make_token(server.home, 'admin')}"
    tokens = {role: h.make_token(server.home, role, IN) for role in ROLES}
    from tiercel.backend import Stores

    stores = Stores.of_home(server.home)
    stores.auth.add_user("ada", "correct horse", "viewer", IN)
    ids = {"token": stores.auth.create_token("viewer", IN)[0]}
    stores.close()
    for ns in (IN, OUT):
        assert admin.post("/api/v1/flows", content=FLOW.format(ns=ns, key=ns), headers=YAML).status_code == 200
        ids[ns] = admin.post(f"/api/v1/executions/{ns}/app", params={"wait": True}).json()["id"]

    operations = [(m.upper(), path) for path, ops in spec()["paths"].items() for m in ops]
    assert set(operations) <= set(RULES), "every operation has a rule"
    # outside the description: the description itself, and public pages (the UI)
    undescribed = sorted(set(RULES) - set(operations))
    assert all(RULES[k] == "public" and (not k[1].startswith("/api/v1/") or k[1] in ("/api/v1/openapi.json",
                                                                                     "/api/v1/docs"))
               for k in undescribed), undescribed
    operations += [k for k in undescribed if "{" not in k[1]]
    wrong = []
    caller = server.client()  # no credentials of its own: each request brings its role's token
    for method, path in operations:
        rule = RULES[(method, path)]
        scopes = (True, False) if _namespaced(method, path) else (True,)
        for role, in_scope in itertools.product([None, *ROLES], scopes):
            ns = IN if in_scope else OUT
            if (method, path) == ("DELETE", "/api/v1/flows/{namespace}/{id}"):
                admin.post("/api/v1/flows", content=DOOMED.format(ns=ns), headers=YAML)
            url, kw = _request(method, path, ns, ids)
            headers = {**kw.pop("headers", {}), **({"Authorization": f"Bearer {tokens[role]}"} if role else {})}
            r = caller.request(method, url, headers=headers, **kw)
            expected = _expected(rule, role, in_scope)
            if expected == "ok":
                fine = r.status_code < 500 and r.status_code not in (401, 403) and (
                    r.status_code != 404 or (method, path) in OWN_404)
            else:
                fine = str(r.status_code) == expected
            if not fine:
                wrong.append(f"{method} {path} as {role or 'nobody'} {'in' if in_scope else 'out of'} scope: "
                             f"expected {expected}, got {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_listings_show_only_the_callers_namespaces(secure_server, h):
    server = secure_server
    admin = {"Authorization": f"Bearer {h.make_token(server.home, 'admin')}"}
    viewer = {"Authorization": f"Bearer {h.make_token(server.home, 'viewer', IN)}"}
    api = server.client()
    for ns in (IN, "company.teamster", OUT):  # company.teamster shares a prefix, not the namespace
        assert api.post("/api/v1/flows", content=FLOW.format(ns=ns, key=ns), headers={**YAML, **admin}).status_code == 200
        assert api.post(f"/api/v1/executions/{ns}/app", json={}, headers=admin).status_code == 200
    for path in ("/api/v1/flows/search", "/api/v1/executions/search", "/api/v1/triggers/search"):
        seen = api.get(path, headers=viewer).json()
        assert {item["namespace"] for item in seen["results"]} == {IN}, path
        assert seen["total"] == len(seen["results"])
        assert len(api.get(path, headers=admin).json()["results"]) > len(seen["results"])
    # a direct read outside the scope reads as if nothing were there
    out = api.get(f"/api/v1/flows/{OUT}/app", headers=viewer)
    missing = api.get(f"/api/v1/flows/{IN}/nothing", headers=viewer)
    assert out.status_code == missing.status_code == 404
    assert out.json()["message"] == f"flow {OUT}.app not found"
