"""Secrets through a real server: the API's execution JSON (created, fetched, searched), the logs
API and its SSE stream, and `tiercel executions show` never show a secret or a SECRET input."""

from __future__ import annotations

import json

from tiercel.testing import TiercelServer, tiercel

TOKEN = "srv-token-5f1e2d3c4b5a"
PASSWORD = "input-pass-0a9b8c7d6e"
FLOW = """id: api_secret
namespace: company.team
inputs:
  - {id: pw, type: SECRET}
tasks:
  - id: use
    type: core.Log
    message: "token {{ secret('API_TOKEN') }} pw {{ inputs.pw }} b64 {{ secret('API_TOKEN') | base64encode }}"
  - id: out
    type: core.Return
    format: "{{ inputs.pw | upper }}/{{ secret('API_TOKEN')[:9] }}"
"""


def test_the_api_logs_sse_and_cli_show_secrets_masked(tmp_path):
    home = tmp_path / "home"
    server = TiercelServer(home, env={"TIERCEL_SECRET_API_TOKEN": TOKEN}).start()
    try:
        server.deploy(FLOW)
        api = server.client()
        created = api.post("/api/v1/executions/company.team/api_secret", params={"wait": True}, json={"pw": PASSWORD})
        assert created.status_code == 200, created.text
        execution = created.json()
        ex_id = execution["id"]
        assert execution["state"] == "SUCCESS" and execution["inputs"] == {"pw": "******"}
        texts = [
            created.text,
            api.get(f"/api/v1/executions/{ex_id}").text,
            api.get("/api/v1/executions/search", params={"flowId": "api_secret"}).text,
        ]
        logs = api.get(f"/api/v1/logs/{ex_id}").json()
        assert [e["message"] for e in logs if e.get("taskId") == "use"] == ["token ****** pw ****** b64 ******"]
        texts.append(json.dumps(logs))
        with api.stream("GET", f"/api/v1/logs/{ex_id}/follow") as sse:
            texts.append("".join(sse.iter_text()))
        assert "token ****** pw ******" in texts[-1] and "event: end" in texts[-1]
    finally:
        server.stop()
    shown = tiercel("executions", "show", ex_id, "--json", home=home)
    texts.append(shown.stdout)
    assert json.loads(shown.stdout)["taskRuns"][1]["outputs"] == {"value": "******/******"}
    for text in texts:
        assert TOKEN not in text and PASSWORD not in text and PASSWORD.upper() not in text and TOKEN[:9] not in text
    for path in home.rglob("*"):
        if path.is_file():  # the server's own log included
            data = path.read_bytes()
            assert TOKEN.encode() not in data and PASSWORD.encode() not in data, path
