"""Files of an execution over the API: download and preview, only the execution's own files, only for
callers who may read its namespace (`GET /executions/{id}/file` and `/file/preview`)."""

from __future__ import annotations

import base64

FLOW = """\
id: files
namespace: {ns}
tasks:
  - id: report
    type: core.storage.Write
    content: |
      name,score
      ada,3
    extension: .csv
  - id: blob
    type: core.storage.Write
    content: "{blob}"
    extension: .bin
"""
YAML = {"Content-Type": "application/x-yaml"}


def _run(api, ns: str, headers: dict | None = None) -> dict:
    source = FLOW.format(ns=ns, blob="\\u0000\\u0001binary\\u0000")
    assert api.post("/api/v1/flows", content=source, headers={**YAML, **(headers or {})}).status_code in (200, 409)
    r = api.post(f"/api/v1/executions/{ns}/files", params={"wait": "true"}, json={}, headers=headers or {})
    assert r.status_code == 200 and r.json()["state"] == "SUCCESS", r.text
    return r.json()


def _output(ex: dict, task_id: str) -> str:
    return next(t["outputs"]["uri"] for t in ex["taskRuns"] if t["taskId"] == task_id)


def test_an_output_file_downloads_as_an_attachment_and_previews_as_text(api):
    ex = _run(api, "company.team")
    uri = _output(ex, "report")
    r = api.get(f"/api/v1/executions/{ex['id']}/file", params={"path": uri})
    assert r.status_code == 200, r.text
    assert r.content == b"name,score\nada,3\n"
    assert r.headers["content-type"] == "application/octet-stream"  # never rendered as a page of the server
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment;") and "result.csv" in r.headers["content-disposition"]
    preview = api.get(f"/api/v1/executions/{ex['id']}/file/preview", params={"path": uri}).json()
    assert preview == {"uri": uri, "name": "result.csv", "extension": "csv", "size": 17, "type": "TEXT",
                       "content": "name,score\nada,3\n", "truncated": False}
    cut = api.get(f"/api/v1/executions/{ex['id']}/file/preview", params={"path": uri, "maxBytes": 4}).json()
    assert cut["content"] == "name" and cut["truncated"] is True and cut["size"] == 17
    binary = api.get(f"/api/v1/executions/{ex['id']}/file/preview", params={"path": _output(ex, "blob")}).json()
    assert binary["type"] == "BINARY" and binary["content"] is None


def test_only_the_executions_own_files_are_served(api):
    first, second = _run(api, "company.team"), _run(api, "company.team")
    theirs = _output(second, "report")
    base = f"/api/v1/executions/{first['id']}"
    r = api.get(f"{base}/file", params={"path": theirs})
    assert r.status_code == 400 and "not a file of execution" in r.json()["message"]
    for path in ("tiercel://company/team/files/executions/" + first["id"] + "/../../../../../etc/passwd",
                 "file:///etc/passwd", "tiercel://../etc/passwd", "/etc/passwd"):
        assert api.get(f"{base}/file", params={"path": path}).status_code == 400, path
        assert api.get(f"{base}/file/preview", params={"path": path}).status_code == 400, path
    mine = _output(first, "report")
    assert api.get(f"{base}/file", params={"path": mine[: mine.rindex("/")] + "/nothing.csv"}).status_code == 404
    assert api.get(f"{base}/file").status_code == 400
    assert api.get("/api/v1/executions/nope/file", params={"path": mine}).status_code == 404


def test_files_need_a_role_on_the_executions_namespace(secure_server, h):
    api = secure_server.client()
    admin = {"Authorization": f"Bearer {h.make_token(secure_server.home, 'admin')}"}
    viewer = {"Authorization": f"Bearer {h.make_token(secure_server.home, 'viewer', 'company.team')}"}
    stranger = {"Authorization": f"Bearer {h.make_token(secure_server.home, 'admin', 'other')}"}
    ex = _run(api, "company.team", admin)
    params = {"path": _output(ex, "report")}
    for suffix in ("file", "file/preview"):
        url = f"/api/v1/executions/{ex['id']}/{suffix}"
        assert api.get(url, params=params, headers=viewer).status_code == 200
        assert api.get(url, params=params).status_code == 401
        assert api.get(url, params=params, headers=stranger).status_code == 404  # nothing leaks
    basic = {"Authorization": "Basic " + base64.b64encode(b"nobody:wrong").decode()}
    assert api.get(f"/api/v1/executions/{ex['id']}/file", params=params, headers=basic).status_code == 401


def test_auth_me_answers_without_credentials(secure_server, api):
    anonymous = secure_server.client().get("/api/v1/auth/me")
    assert anonymous.status_code == 200
    assert anonymous.json() == {"username": None, "authentication": True, "grants": []}
    wrong = secure_server.client().get("/api/v1/auth/me", headers={"Authorization": "Bearer tct_nope_nope"})
    assert wrong.status_code == 401
    off = api.get("/api/v1/auth/me").json()
    assert off["authentication"] is False and off["username"] == "anonymous"
