"""A web page the developer opens must not reach a loopback server: cross-origin and DNS-rebinding requests refused.

Each request below is what a browser would send for a hostile page (a cross-origin form or
fetch, or a page on a DNS name rebound to 127.0.0.1); the server is a real subprocess.
"""

from __future__ import annotations

import httpx
import pytest

from tiercel.server.guard import OriginPolicy

SHELL_FLOW = """\
id: pwned
namespace: attack
tasks:
  - id: boom
    type: core.Log
    message: a page deployed this
"""

WEBHOOK_FLOW = """\
id: hook
namespace: demo.guard
tasks:
  - id: echo
    type: core.Return
    format: "{{ trigger.body }}"
triggers:
  - id: web
    type: core.Webhook
    key: s3cr3t-key
    wait: true
"""


def test_cross_origin_text_plain_post_cannot_deploy_a_flow(server, api):
    # <form enctype="text/plain"> or fetch(..., {mode: "no-cors", body: yaml}) from another site
    r = api.post("/api/v1/flows", content=SHELL_FLOW,
                 headers={"Content-Type": "text/plain", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403 and "cross-origin" in r.json()["message"]
    # the same body without the browser headers: still refused for its type, which no preflight protects
    r = api.post("/api/v1/flows", content=SHELL_FLOW, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/x-yaml" in r.json()["message"]
    r = api.post("/api/v1/flows", content="a=b", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert api.get("/api/v1/flows/attack/pwned").status_code == 404


def test_foreign_origin_refused_own_origin_accepted(server, api):
    yaml_ct = {"Content-Type": "application/x-yaml"}
    refused = api.post("/api/v1/flows", content=SHELL_FLOW, headers={**yaml_ct, "Origin": "http://127.0.0.1:1"})
    assert refused.status_code == 403 and "--cors-origins" in refused.json()["message"]
    assert api.post("/api/v1/flows", content=SHELL_FLOW, headers={**yaml_ct, "Origin": "null"}).status_code == 403
    own = api.post("/api/v1/flows", content=SHELL_FLOW, headers={**yaml_ct, "Origin": server.url})
    assert own.status_code == 200, own.text
    # a bodyless state change (kill) from another site is refused too
    started = api.post("/api/v1/executions/attack/pwned", json={}).json()
    kill = api.delete(f"/api/v1/executions/{started['id']}/kill", headers={"Origin": "https://evil.example"})
    assert kill.status_code == 403
    sneaky = api.post(f"/api/v1/executions/{started['id']}/kill", headers={"Sec-Fetch-Site": "cross-site"})
    assert sneaky.status_code == 403
    # reading is harmless without CORS headers (the browser hides the answer), so GETs pass
    assert api.get("/api/v1/flows/attack/pwned", headers={"Origin": "https://evil.example"}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "rebind.attacker.test"])
def test_dns_rebinding_host_refused(server, api, host):
    r = api.get("/api/v1/flows/search", headers={"Host": host})
    assert r.status_code == 400 and "--allowed-hosts" in r.json()["message"]
    r = api.post("/api/v1/flows", content=SHELL_FLOW, headers={"Host": host, "Content-Type": "application/x-yaml"})
    assert r.status_code == 400


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "app.localhost", "[::1]"])
def test_loopback_hosts_accepted(server, api, host):
    assert api.get("/api/v1/health", headers={"Host": f"{host}:{server.port}"}).status_code == 200


def test_webhook_keeps_working_from_anywhere_with_its_key(server, api):
    server.deploy(WEBHOOK_FLOW)
    url = "/api/v1/executions/webhook/demo.guard/hook/s3cr3t-key"
    r = api.post(url, content="ping",
                 headers={"Content-Type": "text/plain", "Origin": "https://hooks.example"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "SUCCESS"
    assert api.post(url.replace("s3cr3t-key", "wrong"), content="x", headers={"Content-Type": "text/plain"}).status_code == 404


def test_security_headers_on_every_response(api):
    for r in (api.get("/api/v1/health"), api.get("/api/v1/docs"), api.get("/api/v1/nothing-here")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert "access-control-allow-origin" not in api.get("/api/v1/health", headers={"Origin": "https://x.example"}).headers


def test_configured_host_and_cors_origin(tmp_path, h):
    proc = h.ServerProcess(tmp_path / "home", args=["--allowed-hosts", "tiercel.internal",
                                                    "--cors-origins", "https://ui.example"]).start()
    try:
        with proc.client() as api:
            assert api.get("/api/v1/health", headers={"Host": "tiercel.internal"}).status_code == 200
            assert api.get("/api/v1/health", headers={"Host": "other.internal"}).status_code == 400
            preflight = api.options("/api/v1/flows", headers={
                "Origin": "https://ui.example", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type"})
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "https://ui.example"
            r = api.post("/api/v1/flows", content=SHELL_FLOW,
                         headers={"Content-Type": "application/x-yaml", "Origin": "https://ui.example"})
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://ui.example"
            other = api.options("/api/v1/flows", headers={"Origin": "https://evil.example",
                                                          "Access-Control-Request-Method": "POST"})
            assert "access-control-allow-origin" not in other.headers
    finally:
        proc.stop()


@pytest.mark.parametrize("bind, host, allowed", [
    ("127.0.0.1", "127.0.0.1:8080", True),
    ("127.0.0.1", "127.1.2.3", True),
    ("127.0.0.1", "[::1]:8080", True),
    ("127.0.0.1", "10.0.0.5:8080", False),
    ("10.0.0.5", "10.0.0.5:8080", True),
    ("10.0.0.5", "evil.example", False),
    ("0.0.0.0", "192.168.1.20:8080", True),   # an IP literal cannot be rebound
    ("0.0.0.0", "evil.example", False),
    ("::", "[fe80::1]:8080", True),
])
def test_host_rules(bind, host, allowed):
    assert OriginPolicy.of(bind).host_allowed(host) is allowed


def test_plain_http_clients_unaffected(server):
    # the CLI and curl send no Origin: deploys and runs work as before
    r = httpx.post(f"{server.url}/api/v1/flows", content=SHELL_FLOW, headers={"Content-Type": "application/x-yaml"})
    assert r.status_code == 200
