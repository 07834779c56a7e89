"""Authentication end to end: `tiercel users|tokens|audit` as subprocesses, a real server with --auth.

One server for the module (authentication on, cheap argon2 parameters); throttling tests call it
from other loopback addresses (127.0.0.2, 127.0.0.3) so their failures count for no other test.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tiercel.testing.harness import TiercelServer, tiercel

FAST = {"TIERCEL_PASSWORD_HASH": "cheapest", "TIERCEL_AUTH_FAILURE_RATE": "3/minute"}
PASSWORD = "s3cret-Pa55word"
FLOW = """\
id: hello
namespace: company.team
tasks:
  - {id: say, type: core.Log, message: hi}
triggers:
  - {id: hook, type: core.Webhook, key: the-webhook-key-42}
"""
YAML = {"Content-Type": "application/x-yaml"}


#: The module's database (``tiercel_module_db``): the CLI of every test uses the server's.
_DB: dict[str, str] = {}


def cli(home, *args, stdin: str | None = None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "tiercel.cli.main", *args, "--home", str(home)], input=stdin,
                          capture_output=True, text=True, timeout=60, env={**__import__("os").environ, **FAST, **_DB})


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tiercel_module_db):
    _DB.clear()
    _DB.update(tiercel_module_db)
    home = tmp_path_factory.mktemp("auth") / "home"
    out = cli(home, "users", "add", "ada", "--role", "editor", "--namespace", "company", "--password-stdin",
              stdin=PASSWORD + "\n")
    assert out.returncode == 0 and "user ada added: editor on company" in out.stdout, out.stderr
    token = cli(home, "tokens", "create", "--role", "admin", "--name", "ops").stdout.split()[-1]
    proc = TiercelServer(home, env={**FAST, **_DB}, args=["--auth"]).start()
    proc.admin = {"Authorization": f"Bearer {token}"}
    proc.secrets = [PASSWORD, token]
    yield proc
    proc.stop()


def from_address(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def test_beyond_loopback_the_server_will_not_start_without_an_auth_setting(tmp_path):
    out = tiercel("server", "--host", "0.0.0.0", "--port", "1", home=tmp_path / "h")
    assert out.returncode == 2
    assert "--auth" in out.stderr and "tiercel users add" in out.stderr and "--no-auth" in out.stderr


def test_no_credentials_is_401_and_public_routes_stay_open(srv):
    api = srv.client()
    r = api.get("/api/v1/flows/search")
    assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]
    assert api.post("/api/v1/flows", content=FLOW, headers=YAML).status_code == 401
    assert api.get("/api/v1/health").status_code == 200
    assert api.get("/api/v1/openapi.json").status_code == 200
    assert api.get("/api/v1/flows/search", headers={"Authorization": "Bearer tct_nope_nope"}).status_code == 401


def test_tokens_scoped_expiring_listed_without_secret_and_revoked(srv):
    out = cli(srv.home, "tokens", "create", "--namespace", "company.team", "--role", "runner", "--expires", "P90D")
    assert out.returncode == 0, out.stderr
    token = out.stdout.split()[-1]
    assert token.startswith("tct_") and "runner on company.team" in out.stdout and "expires" in out.stdout
    bearer = {"Authorization": f"Bearer {token}"}
    api = srv.client()
    me = api.get("/api/v1/auth/me", headers=bearer).json()
    assert me["grants"] == [{"role": "runner", "namespace": "company.team"}] and me["authentication"] is True
    assert api.post("/api/v1/flows", content=FLOW, headers={**YAML, **bearer}).status_code == 403  # runner < editor
    listed = cli(srv.home, "tokens", "list", "--json")
    rows = json.loads(listed.stdout)
    token_id = token.split("_")[1]
    assert any(r["id"] == token_id and r["role"] == "runner" and r["expires"] for r in rows)
    assert token.split("_", 2)[2] not in listed.stdout
    assert cli(srv.home, "tokens", "revoke", token_id).returncode == 0
    assert api.get("/api/v1/auth/me", headers=bearer).status_code == 401
    bad = cli(srv.home, "tokens", "create", "--role", "viewer", "--expires", "soon")
    assert bad.returncode == 2 and "P90D" in bad.stderr


def test_users_basic_auth_password_change_and_removal(srv):
    api = srv.client()
    assert api.get("/api/v1/auth/me", auth=("ada", PASSWORD)).json()["username"] == "ada"
    assert "ada" in cli(srv.home, "users", "list").stdout
    assert cli(srv.home, "users", "add", "bob", "--role", "viewer", "--password-stdin",
               stdin="new-password-1\n").returncode == 0
    assert api.get("/api/v1/auth/me", auth=("bob", "new-password-1")).status_code == 200
    assert cli(srv.home, "users", "passwd", "bob", "--password-stdin", stdin="new-password-2\n").returncode == 0
    assert api.get("/api/v1/auth/me", auth=("bob", "new-password-2")).status_code == 200
    assert cli(srv.home, "users", "remove", "bob").returncode == 0
    assert "bob" not in cli(srv.home, "users", "list").stdout
    short = cli(srv.home, "users", "add", "eve", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 8" in short.stderr
    dup = cli(srv.home, "users", "add", "ada", "--role", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    assert dup.returncode == 1 and "already exists" in dup.stderr


def test_session_login_secure_cookie_and_csrf(srv):
    api = srv.client()
    r = api.post("/api/v1/auth/login", json={"username": "ada", "password": PASSWORD})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # plain HTTP on loopback: browsers would drop a Secure cookie
    proxied = api.post("/api/v1/auth/login", json={"username": "ada", "password": PASSWORD},
                       headers={"X-Forwarded-Proto": "https"})  # a TLS proxy on this host
    assert "; secure" in proxied.headers["set-cookie"].lower()
    session = cookie.split(";")[0]
    csrf = r.json()["csrfToken"]
    srv.secrets.append(session.split("=", 1)[1])
    jar = {"Cookie": session}
    assert api.get("/api/v1/auth/me", headers=jar).json()["csrfToken"] == csrf
    refused = api.post("/api/v1/flows", content=FLOW, headers={**YAML, **jar})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["message"]
    assert api.post("/api/v1/flows", content=FLOW, headers={**YAML, **jar, "X-CSRF-Token": "forged"}).status_code == 403
    ok = api.post("/api/v1/flows", content=FLOW, headers={**YAML, **jar, "X-CSRF-Token": csrf})
    assert ok.status_code in (200, 409), ok.text
    assert api.post("/api/v1/auth/logout", headers=jar).status_code == 204
    assert api.get("/api/v1/auth/me", headers=jar).status_code == 401


def test_wrong_passwords_and_webhook_keys_are_throttled_per_client(srv):
    with from_address("127.0.0.2") as attacker, from_address("127.0.0.3") as other:
        login = f"{srv.url}/api/v1/auth/login"
        for _ in range(3):
            assert attacker.post(login, json={"username": "ada", "password": "guess"}).status_code == 401
        blocked = attacker.post(login, json={"username": "ada", "password": PASSWORD})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert attacker.get(f"{srv.url}/api/v1/auth/me", auth=("ada", PASSWORD)).status_code == 429
        # another client is not locked out by the attacker
        assert other.post(login, json={"username": "ada", "password": PASSWORD}).status_code == 200
        hook = f"{srv.url}/api/v1/executions/webhook/company.team/hello"
        for _ in range(3):
            assert other.post(f"{hook}/wrong-key", json={}).status_code == 404
        assert other.post(f"{hook}/wrong-key", json={}).status_code == 429


def test_audit_log_by_api_and_cli_and_no_secret_anywhere(srv):
    api = srv.client()
    api.post("/api/v1/flows", content=FLOW.replace("hello", "audited"), headers={**YAML, **srv.admin})
    api.post("/api/v1/executions/company.team/audited", json={}, auth=("ada", PASSWORD))
    api.post("/api/v1/executions/webhook/company.team/audited/the-webhook-key-42", json={})
    api.post("/api/v1/flows", content=FLOW.replace("hello", "other"), headers=YAML)  # refused: no credentials
    entries = api.get("/api/v1/audit", headers=srv.admin).json()
    deploy = next(e for e in entries if e["path"] == "/api/v1/flows" and e["status"] == 200
                  and e["actor"].startswith("token:"))
    assert deploy["method"] == "POST" and deploy["namespace"] == "company.team" and deploy["client"] == "127.0.0.1"
    hook = next(e for e in entries if e["actor"] == "webhook")
    assert hook["path"].endswith("/audited/***") and hook["namespace"] == "company.team"
    assert any(e["actor"] == "-" and e["status"] == 401 for e in entries)
    assert api.get("/api/v1/audit", auth=("ada", PASSWORD)).status_code == 403  # editor, not admin
    out = cli(srv.home, "audit", "--json", "--namespace", "company.team")
    assert out.returncode == 0, out.stderr
    assert any(e["actor"] == "ada" and e["path"] == "/api/v1/executions/company.team/audited"
               for e in json.loads(out.stdout))
    remote = tiercel("audit", "--server", srv.url, "--limit", "5", env={"TIERCEL_TOKEN": srv.admin["Authorization"][7:]})
    assert remote.returncode == 0 and len(remote.stdout.splitlines()) == 5, remote.stderr
    # secrets never stored in clear nor logged
    stored = b"".join(p.read_bytes() for p in srv.home.glob("tiercel.db*"))
    logged = srv.log.read_bytes()
    for secret in srv.secrets:  # the password, the admin token, the session id
        assert secret.encode() not in stored and secret.encode() not in logged, secret[:6]
    assert b"the-webhook-key-42/" not in stored and b"/the-webhook-key-42" not in stored  # masked in audit paths


def test_webhook_keys_are_shown_only_to_editors(srv):
    api = srv.client()
    api.post("/api/v1/flows", content=FLOW.replace("hello", "keyed"), headers={**YAML, **srv.admin})
    viewer = {"Authorization": "Bearer " + cli(srv.home, "tokens", "create", "--role", "viewer").stdout.split()[-1]}
    for headers in (viewer, {**viewer, "Accept": "application/x-yaml"}):
        shown = api.get("/api/v1/flows/company.team/keyed", headers=headers).text
        assert "the-webhook-key-42" not in shown and "******" in shown
    listed = api.get("/api/v1/flows/search", headers=viewer).text
    assert "the-webhook-key-42" not in listed
    editor = api.get("/api/v1/flows/company.team/keyed", auth=("ada", PASSWORD)).json()
    assert editor["triggers"][0]["key"] == "the-webhook-key-42"


def test_a_flow_may_start_subflows_only_where_its_deployer_may_run(srv):
    api = srv.client()
    parent = ("id: parent\nnamespace: company.team\ntasks:\n"
              "  - {{id: child, type: core.Subflow, namespace: {ns}, flowId: any}}\n")
    refused = api.post("/api/v1/flows", content=parent.format(ns="other.ns"), headers=YAML, auth=("ada", PASSWORD))
    assert refused.status_code == 403 and "`other.ns`" in refused.json()["message"]
    dynamic = api.post("/api/v1/flows", content=parent.format(ns="'{{ inputs.ns }}'"), headers=YAML,
                       auth=("ada", PASSWORD))
    assert dynamic.status_code == 403 and "expression" in dynamic.json()["message"]
    ok = api.post("/api/v1/flows", content=parent.format(ns="company.data"), headers=YAML, auth=("ada", PASSWORD))
    assert ok.status_code == 200, ok.text  # ada is editor on company: she may run flows in company.data
    assert api.post("/api/v1/flows", content=parent.format(ns="other.ns").replace("parent", "p2"),
                    headers={**YAML, **srv.admin}).status_code == 200


def test_admins_manage_tokens_of_their_namespaces_through_the_api(srv):
    api = srv.client()
    team_admin = {"Authorization": "Bearer " + cli(srv.home, "tokens", "create", "--role", "admin", "--namespace",
                                                   "company.team").stdout.split()[-1]}
    made = api.post("/api/v1/auth/tokens", json={"role": "runner", "namespace": "company.team.etl", "expires": "P1D"},
                    headers=team_admin)
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store", made.text
    new = {"Authorization": f"Bearer {made.json()['token']}"}
    assert api.get("/api/v1/auth/me", headers=new).json()["grants"] == [{"role": "runner",
                                                                          "namespace": "company.team.etl"}]
    wider = api.post("/api/v1/auth/tokens", json={"role": "viewer", "namespace": "company"}, headers=team_admin)
    assert wider.status_code == 403  # no token reaches further than its maker
    listed = api.get("/api/v1/auth/tokens", headers=team_admin).json()
    assert {t["namespace"] for t in listed} <= {"company.team", "company.team.etl"} and "token" not in listed[0]
    assert api.delete(f"/api/v1/auth/tokens/{made.json()['id']}", headers=team_admin).status_code == 204
    assert api.get("/api/v1/auth/me", headers=new).status_code == 401
    srv.secrets.append(made.json()["token"])
