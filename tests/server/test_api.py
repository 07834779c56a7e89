"""The REST API over real HTTP against a `tiercel server` subprocess."""

from __future__ import annotations

import json

HELLO = """\
id: hello
namespace: demo.api
labels: {team: data}
inputs:
  - {id: name, type: STRING, defaults: world}
  - {id: doc, type: FILE, required: false}
tasks:
  - id: out
    type: core.OutputValues
    values: {greeting: "hi {{ inputs.name }}"}
  - id: log
    type: core.Log
    message: "{{ outputs.out.values.greeting }}"
outputs:
  - {id: greeting, type: STRING, value: "{{ outputs.out.values.greeting }}"}
"""


def test_flows_crud_revisions_search(api, h):
    created = h.deploy(api, HELLO)
    assert (created["id"], created["namespace"], created["revision"]) == ("hello", "demo.api", 1)
    assert created["source"] == HELLO and created["tasks"][0]["id"] == "out"

    again = api.post("/api/v1/flows", content=HELLO, headers={"Content-Type": "application/x-yaml"})
    assert again.status_code == 409 and "already exists" in again.json()["message"]

    updated = api.put("/api/v1/flows/demo.api/hello", content=HELLO.replace("hi ", "hello "),
                      headers={"Content-Type": "application/x-yaml"})
    assert updated.status_code == 200 and updated.json()["revision"] == 2
    assert [r["revision"] for r in api.get("/api/v1/flows/demo.api/hello/revisions").json()] == [1, 2]
    assert "hi " in api.get("/api/v1/flows/demo.api/hello", params={"revision": 1}).json()["source"]
    yaml_text = api.get("/api/v1/flows/demo.api/hello", headers={"Accept": "application/x-yaml"})
    assert yaml_text.headers["content-type"].startswith("application/x-yaml") and "hello " in yaml_text.text

    found = api.get("/api/v1/flows/search", params={"namespace": "demo"}).json()
    assert found["total"] == 1 and found["results"][0]["id"] == "hello"
    assert api.get("/api/v1/flows/search", params={"q": "nothing-like-it"}).json() == {"results": [], "total": 0}
    assert [f["id"] for f in api.get("/api/v1/flows/demo.api").json()] == ["hello"]

    renamed = api.put("/api/v1/flows/demo.api/hello", content=HELLO.replace("id: hello", "id: other"),
                      headers={"Content-Type": "application/x-yaml"})
    assert renamed.status_code == 422 and "cannot change" in renamed.json()["message"]

    assert api.delete("/api/v1/flows/demo.api/hello").status_code == 204
    assert api.get("/api/v1/flows/demo.api/hello").status_code == 404
    assert api.delete("/api/v1/flows/demo.api/hello").status_code == 404


def test_validate_returns_kernel_messages(api):
    bad = HELLO.replace("core.Log", "core.Logg")
    r = api.post("/api/v1/flows/validate", content=HELLO + "---\n" + bad, headers={"Content-Type": "application/x-yaml"})
    assert r.status_code == 200
    ok, wrong = r.json()
    assert ok["errors"] == [] and ok["flow"] == "hello"
    assert wrong["errors"] and "core.Log" in wrong["constraints"]  # the kernel's did-you-mean
    assert wrong["errors"][0]["line"] == 13 and wrong["errors"][0]["task_id"] == "log"


def test_execution_create_wait_search_logs(api, h):
    h.deploy(api, HELLO)
    r = api.post("/api/v1/executions/demo.api/hello", json={"name": "bob"}, params={"wait": "true", "labels": "env:test"})
    assert r.status_code == 200, r.text
    ex = r.json()
    assert ex["state"] == "SUCCESS" and ex["outputs"] == {"greeting": "hi bob"}
    assert ex["labels"] == {"team": "data", "env": "test", "system.correlationId": ex["id"]} and ex["flowRevision"] == 1
    assert [t["taskId"] for t in ex["taskRuns"]] == ["out", "log"]
    assert api.get(f"/api/v1/executions/{ex['id']}").json()["outputs"] == {"greeting": "hi bob"}

    no_wait = api.post("/api/v1/executions/demo.api/hello").json()
    assert no_wait["state"] in ("CREATED", "RUNNING", "SUCCESS")
    h.wait_for(lambda: api.get(f"/api/v1/executions/{no_wait['id']}").json()["state"] == "SUCCESS")

    page = api.get("/api/v1/executions/search", params={"namespace": "demo", "flowId": "hello", "state": "SUCCESS"}).json()
    assert page["total"] == 2 and {e["id"] for e in page["results"]} == {ex["id"], no_wait["id"]}
    assert api.get("/api/v1/executions/search", params={"labels": "env:test"}).json()["total"] == 1
    assert api.get("/api/v1/executions/search", params={"state": "FAILED"}).json()["total"] == 0
    assert api.get("/api/v1/executions/search", params={"size": 1, "page": 2}).json()["total"] == 2
    assert api.get("/api/v1/executions/search", params={"startDate": "2999-01-01T00:00:00Z"}).json()["total"] == 0

    logs = api.get(f"/api/v1/logs/{ex['id']}").json()
    assert [(entry["taskId"], entry["message"]) for entry in logs] == [("log", "hi bob")]
    assert api.get(f"/api/v1/logs/{ex['id']}", params={"minLevel": "ERROR"}).json() == []


def test_multipart_inputs_upload_files(api, h, tmp_path):
    h.deploy(api, HELLO.replace("message: \"{{ outputs.out.values.greeting }}\"",
                                "message: \"{{ read(inputs.doc) }}\""))
    r = api.post("/api/v1/executions/demo.api/hello", params={"wait": "true"},
                 data={"name": "form"}, files={"doc": ("notes.txt", b"file content", "text/plain")})
    assert r.status_code == 200, r.text
    ex = r.json()
    assert ex["state"] == "SUCCESS", ex
    assert ex["inputs"]["doc"].startswith("tiercel://demo/api/hello/executions/") and ex["inputs"]["doc"].endswith("notes.txt")
    assert api.get(f"/api/v1/logs/{ex['id']}").json()[0]["message"] == "file content"
    # a server-side path is never accepted for a FILE input
    r = api.post("/api/v1/executions/demo.api/hello", json={"doc": "/etc/passwd"})
    assert r.status_code == 422 and "multipart" in r.json()["message"]


def test_follow_execution_and_logs_as_server_sent_events(api, h):
    h.deploy(api, """\
id: slow
namespace: demo.api
tasks:
  - {id: a, type: core.Log, message: first}
  - {id: wait, type: core.Sleep, duration: PT0.3S}
  - {id: b, type: core.Log, message: second}
""")
    ex = api.post("/api/v1/executions/demo.api/slow").json()
    with api.stream("GET", f"/api/v1/logs/{ex['id']}/follow") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = _sse(stream.iter_lines())
    assert [json.loads(e["data"])["message"] for e in events if e["event"] == "log"] == ["first", "second"]
    assert events[-1]["event"] == "end"
    with api.stream("GET", f"/api/v1/executions/{ex['id']}/follow") as stream:
        states = [json.loads(e["data"])["state"] for e in _sse(stream.iter_lines()) if e["event"] == "execution"]
    assert states[-1] == "SUCCESS"


def _sse(lines) -> list[dict]:
    events, current = [], {}
    for line in lines:
        if not line:
            if current:
                events.append(current)
                current = {}
            continue
        key, _, value = line.partition(": ")
        current[key] = value
    return events


def test_kill_restart_replay_resume(api, h):
    h.deploy(api, """\
id: control
namespace: demo.api
inputs:
  - {id: fail, type: BOOLEAN, defaults: false}
tasks:
  - {id: first, type: core.Log, message: start}
  - id: maybe
    type: core.If
    condition: "{{ inputs.fail }}"
    then:
      - {id: boom, type: core.Fail, errorMessage: requested}
  - {id: pause, type: core.Pause, runIf: "{{ not inputs.fail }}"}
  - {id: long, type: core.Sleep, duration: PT30S, runIf: "{{ not inputs.fail }}"}
""")
    ex = api.post("/api/v1/executions/demo.api/control").json()
    h.wait_for(lambda: api.get(f"/api/v1/executions/{ex['id']}").json()["state"] == "PAUSED")
    assert api.post(f"/api/v1/executions/{ex['id']}/resume", json={}).status_code == 202
    h.wait_for(lambda: any(t["taskId"] == "long" and t["state"] == "RUNNING"
                           for t in api.get(f"/api/v1/executions/{ex['id']}").json()["taskRuns"]))
    assert api.delete(f"/api/v1/executions/{ex['id']}/kill").status_code == 202
    h.wait_for(lambda: api.get(f"/api/v1/executions/{ex['id']}").json()["state"] == "KILLED")
    assert api.delete(f"/api/v1/executions/{ex['id']}/kill").status_code == 409
    assert api.post(f"/api/v1/executions/{ex['id']}/resume", json={}).status_code == 409

    failed = api.post("/api/v1/executions/demo.api/control", json={"fail": True}, params={"wait": True}).json()
    assert failed["state"] == "FAILED"
    restarted = api.post(f"/api/v1/executions/{failed['id']}/restart", params={"wait": True})
    assert restarted.status_code == 200 and restarted.json()["id"] == failed["id"]
    final = h.wait_for(lambda: (e := api.get(f"/api/v1/executions/{failed['id']}").json())["state"] in ("FAILED",)
                       and len(_attempts(e, "boom")) == 2 and e)
    assert len(_attempts(final, "boom")) == 2  # the failed task ran again, in the same execution

    replay = api.post(f"/api/v1/executions/{failed['id']}/replay", params={"taskId": "maybe", "wait": True})
    assert replay.status_code == 200
    assert replay.json()["originalId"] == failed["id"] and replay.json()["id"] != failed["id"]
    assert api.post(f"/api/v1/executions/{failed['id']}/replay", params={"taskId": "nope"}).status_code == 422
    success = api.post("/api/v1/executions/demo.api/control", json={"fail": True}, params={"wait": True}).json()
    assert api.post(f"/api/v1/executions/{ex['id']}/restart").status_code == 200  # KILLED may restart
    assert success["state"] == "FAILED"


def _attempts(ex: dict, task_id: str) -> list:
    return next(t["attempts"] for t in ex["taskRuns"] if t["taskId"] == task_id)


def test_bad_input_gives_clear_4xx_json(api, h):
    yaml_ct = {"Content-Type": "application/x-yaml"}
    cases = [
        (api.post("/api/v1/flows", content="id: [unclosed", headers=yaml_ct), 422, "invalid flow"),
        (api.post("/api/v1/flows", content="just a string", headers=yaml_ct), 422, "invalid flow"),
        (api.post("/api/v1/flows", content="", headers=yaml_ct), 422, "empty"),
        (api.post("/api/v1/flows", json={"id": "x"}), 415, "application/x-yaml"),
        (api.post("/api/v1/flows", content=b"\xff\xfe", headers=yaml_ct), 400, "UTF-8"),
        (api.post("/api/v1/flows", content="id: x\n" + "#" * (1 << 20), headers=yaml_ct), 413, "too large"),
        (api.post("/api/v1/executions/nope/nope"), 404, "not found"),
        (api.get("/api/v1/executions/doesnotexist"), 404, "not found"),
        (api.get("/api/v1/executions/search", params={"size": "lots"}), 400, "integer"),
        (api.get("/api/v1/executions/search", params={"state": "DONE"}), 400, "unknown state"),
        (api.get("/api/v1/executions/search", params={"startDate": "yesterday"}), 400, "RFC 3339"),
        (api.get("/api/v1/nothing/here"), 404, "no such endpoint"),
        (api.patch("/api/v1/flows"), 405, "not allowed"),
    ]
    h.deploy(api, HELLO)
    cases += [
        (api.post("/api/v1/executions/demo.api/hello", content="{not json", headers={"Content-Type": "application/json"}), 400, "invalid JSON"),
        (api.post("/api/v1/executions/demo.api/hello", json=[1, 2]), 400, "object"),
        (api.post("/api/v1/executions/demo.api/hello", json={"nmae": "x"}), 422, "did you mean `name`"),
        (api.post("/api/v1/executions/demo.api/hello", content="x", headers={"Content-Type": "text/csv"}), 415, "JSON"),
        (api.post("/api/v1/executions/demo.api/hello", params={"labels": "nocolon"}), 400, "key:value"),
    ]
    for response, status, text in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert text in response.json()["message"], response.json()
    assert "line" in cases[0][0].json()["errors"][0]


def test_health_plugins_schema_and_docs(api):
    assert api.get("/api/v1/health").json()["status"] == "UP"
    types = {c["type"] for c in api.get("/api/v1/plugins").json()}
    assert {"core.Log", "core.Schedule", "core.Webhook"} <= types
    schema = api.get("/api/v1/plugins/schemas/flow").json()
    assert "core.Log" in str(schema) and schema.get("$schema", "").startswith("http://json-schema.org/draft-07")
    page = api.get("/api/v1/docs")
    assert page.status_code == 200 and "openapi.json" in page.text
    spec = api.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/v1/executions/search" in spec["paths"]


def test_a_single_valued_query_parameter_given_twice_is_rejected(api):
    r = api.get("/api/v1/flows/search", params=[("size", "1"), ("size", "2")])
    assert r.status_code == 400 and "given 2 times" in r.json()["message"]
    assert api.get("/api/v1/executions/search", params=[("state", "SUCCESS"), ("state", "FAILED")]).status_code == 200


def test_unknown_query_parameters_and_loose_dates_are_rejected(api):
    r = api.get("/api/v1/executions/search", params={"flowid": "x"})
    assert r.status_code == 400 and "did you mean `flowId`" in r.json()["message"]
    r = api.get("/api/v1/executions/search", params={"endDate": "2026-01-01"})
    assert r.status_code == 400 and "RFC 3339" in r.json()["message"]
    assert api.get("/api/v1/executions/search", params={"endDate": "2026-01-01T00:00:00+01:00"}).status_code == 200
    assert api.get("/api/v1/executions/search", params={"state": "success"}).status_code == 400


def test_an_unusable_upload_name_is_a_400(api, h):
    h.deploy(api, HELLO)
    r = api.post("/api/v1/executions/demo.api/hello", files={"doc": ("..", b"x", "text/plain")})
    assert r.status_code == 400 and "file part `doc`" in r.json()["message"]
