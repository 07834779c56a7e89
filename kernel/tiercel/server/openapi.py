"""The OpenAPI 3.0 description of the API (served at /api/v1/openapi.json) and the docs page.

Written by hand, next to the handlers, so that clients generated from it (as Kestra's SDKs
are) get real schemas; a schemathesis test checks the server against it.
"""

from __future__ import annotations

from typing import Any

from tiercel.model import State

JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _path(name: str, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _op(tag: str, summary: str, responses: dict[str, Any], params: list | None = None, body: dict | None = None,
        op_id: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"tags": [tag], "summary": summary, "operationId": op_id or summary.replace(" ", "_").lower(),
                          "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


YAML_BODY = {"required": True, "description": "The flow source (YAML).",
             "content": {"application/x-yaml": {"schema": {"type": "string"}}}}
PAGE = [_query("page", {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1}),
        _query("size", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 25})]
NS, ID, FLOW_ID, EXEC_ID = _path("namespace"), _path("id"), _path("flowId"), _path("executionId")
TRIGGER = [NS, FLOW_ID, _path("triggerId")]
STATE = {"type": "string", "enum": [s.value for s in State if s != State.LOST]}
INPUTS_BODY = {"required": False, "description": "Inputs: a JSON object, or a form (FILE inputs as file parts).",
               "content": {JSON: {"schema": {"type": "object", "additionalProperties": True}},
                           "multipart/form-data": {"schema": {"type": "object", "additionalProperties": True}}}}
WAIT = _query("wait", {"type": "boolean", "default": False}, "Answer once the execution has ended.")
TIMEOUT = _query("timeout", {"type": "integer", "minimum": 1, "maximum": 3600}, "Seconds to wait at most (300).")
SSE = {"description": "Server-sent events", "content": {"text/event-stream": {"schema": {"type": "string"}}}}
NOT_FOUND = _err("Not found")
BAD = _err("Invalid request")


def spec() -> dict[str, Any]:
    from tiercel import __version__

    e = "/api/v1/executions"
    t = "/api/v1/triggers/{namespace}/{flowId}/{triggerId}"
    trig_ok = {"200": _json(_ref("Trigger")), "404": NOT_FOUND}
    paths: dict[str, Any] = {
        "/api/v1/health": {"get": _op("Server", "Health", {"200": _json({"type": "object"})})},
        "/api/v1/cluster": {"get": _op("Server", "Cluster status: processes, job queues, namespace quotas (admin)",
                                       {"200": _json({"type": "object"})})},
        "/metrics": {"get": _op("Server", "Metrics", {
            "200": {"description": "Prometheus text format (docs/operations/observability.md)",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            "401": _err("Authentication required")})},
        "/api/v1/auth/login": {"post": _op("Auth", "Log in", {
            "200": _json(_ref("Me"), "Logged in: a session cookie is set; send csrfToken as X-CSRF-Token on changes"),
            "400": BAD, "401": _err("Wrong user name or password"), "409": _err("Authentication is off"),
            "413": _err("Too large"), "415": _err("Not JSON"), "429": _err("Too many failed attempts")},
            body={"required": True, "content": {JSON: {"schema": _ref("Login")}}})},
        "/api/v1/auth/logout": {"post": _op("Auth", "Log out", {"204": {"description": "Logged out"}})},
        "/api/v1/auth/me": {"get": _op("Auth", "Who am I", {"200": _json(_ref("Me")), "401": _err("Not authenticated")})},
        "/api/v1/audit": {"get": _op("Auth", "Audit log", {
            "200": _json({"type": "array", "items": _ref("AuditEntry")}), "400": BAD, "401": _err("Not authenticated"),
            "403": _err("Not an admin")},
            [_query("actor", {"type": "string"}), _query("namespace", {"type": "string"}),
             _query("since", {"type": "string", "format": "date-time"}),
             _query("size", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100})])},
        "/api/v1/auth/tokens": {
            "get": _op("Auth", "List tokens", {"200": _json({"type": "array", "items": _ref("Token")})}),
            "post": _op("Auth", "Create a token", {
                "200": _json(_ref("NewToken"), "The token, shown only in this answer"), "400": BAD,
                "413": _err("Too large"), "415": _err("Not JSON")},
                body={"required": True, "content": {JSON: {"schema": _ref("TokenRequest")}}})},
        "/api/v1/auth/tokens/{tokenId}": {"delete": _op("Auth", "Revoke a token", {
            "204": {"description": "Revoked"}, "404": NOT_FOUND}, [_path("tokenId")])},
        "/api/v1/plugins": {"get": _op("Server", "List plugin components", {"200": _json({"type": "array", "items": {"type": "object"}})})},
        "/api/v1/plugins/schemas/flow": {"get": _op("Server", "JSON Schema of a flow", {"200": _json({"type": "object"})})},
        "/api/v1/flows": {"post": _op("Flows", "Create a flow", {
            "200": _json(_ref("Flow")), "400": BAD, "409": _err("Exists"), "413": _err("Too large"),
            "415": _err("Not YAML"), "422": _err("Invalid flow")}, body=YAML_BODY)},
        "/api/v1/flows/validate": {"post": _op("Flows", "Validate flows", {
            "200": _json({"type": "array", "items": _ref("Validation")}), "400": BAD, "413": _err("Too large"),
            "415": _err("Not YAML"), "422": _err("Empty")}, body=YAML_BODY)},
        "/api/v1/flows/search": {"get": _op("Flows", "Search flows", {"200": _json(_page("Flow")), "400": BAD},
                                            [_query("namespace", {"type": "string"}), _query("q", {"type": "string"}), *PAGE])},
        "/api/v1/flows/{namespace}": {"get": _op("Flows", "List a namespace's flows", {
            "200": _json({"type": "array", "items": _ref("Flow")})}, [NS])},
        "/api/v1/flows/{namespace}/{id}": {
            "get": _op("Flows", "Get a flow", {"200": _json(_ref("Flow")), "400": BAD, "404": NOT_FOUND},
                       [NS, ID, _query("revision", {"type": "integer", "minimum": 1, "maximum": 1000000000})]),
            "put": _op("Flows", "Update a flow", {"200": _json(_ref("Flow")), "400": BAD, "404": NOT_FOUND,
                                                  "413": _err("Too large"), "415": _err("Not YAML"),
                                                  "422": _err("Invalid flow")}, [NS, ID], YAML_BODY),
            "delete": _op("Flows", "Delete a flow", {"204": {"description": "Deleted"}, "404": NOT_FOUND}, [NS, ID])},
        "/api/v1/flows/{namespace}/{id}/revisions": {"get": _op("Flows", "Flow revisions", {
            "200": _json({"type": "array", "items": _ref("Flow")}), "404": NOT_FOUND}, [NS, ID])},
        f"{e}/search": {"get": _op("Executions", "Search executions", {"200": _json(_page("Execution")), "400": BAD}, [
            _query("namespace", {"type": "string"}), _query("flowId", {"type": "string"}),
            {"name": "state", "in": "query", "schema": {"type": "array", "items": STATE}, "style": "form", "explode": True},
            {"name": "labels", "in": "query", "schema": {"type": "array", "items": {"type": "string", "pattern": "^[^:]+:.*$"}},
             "style": "form", "explode": True, "description": "key:value"},
            _query("startDate", {"type": "string", "format": "date-time"}),
            _query("endDate", {"type": "string", "format": "date-time"}), *PAGE])},
        f"{e}/webhook/{{namespace}}/{{flowId}}/{{key}}": {m: _op("Executions", f"Webhook {m.upper()}", {
            "200": _json({"type": "object"}, "Execution started (or, with `wait: true`, ended: its outputs)"),
            "202": _json({"type": "object"}, "With `wait: true`: still running when `timeout` seconds passed"),
            "204": {"description": "Conditions blocked the call"}, "400": BAD, "404": _err("No such flow or key"),
            "409": _err("Trigger disabled"), "413": _err("Too large"),
            "429": _err("Too many wrong keys from this client")}, [NS, FLOW_ID, _path("key"), TIMEOUT],
            None if m == "get" else {"required": False, "content": {"*/*": {"schema": {}}}}, f"webhook_{m}")
            for m in ("get", "post", "put")},
        f"{e}/{{executionId}}/kill": {m: _op("Executions", f"Kill an execution ({m})", {
            "202": _json({"type": "object"}), "404": NOT_FOUND, "409": _err("Already ended")}, [EXEC_ID], None, f"kill_{m}")
            for m in ("delete", "post")},
        f"{e}/{{executionId}}/restart": {"post": _op("Executions", "Restart an execution", {
            "200": _json(_ref("Execution")), "400": BAD, "404": NOT_FOUND, "409": _err("Not restartable")}, [EXEC_ID, WAIT, TIMEOUT])},
        f"{e}/{{executionId}}/replay": {"post": _op("Executions", "Replay an execution", {
            "200": _json(_ref("Execution")), "400": BAD, "404": NOT_FOUND, "422": _err("Cannot replay")},
            [EXEC_ID, _query("taskId", {"type": "string"}), _query("taskRunId", {"type": "string"}), WAIT, TIMEOUT])},
        f"{e}/{{executionId}}/resume": {"post": _op("Executions", "Resume a paused execution", {
            "202": _json({"type": "object"}), "400": BAD, "404": NOT_FOUND, "409": _err("Not paused"),
            "413": _err("Too large"), "415": _err("Not JSON")}, [EXEC_ID], INPUTS_BODY)},
        f"{e}/{{executionId}}/follow": {"get": _op("Executions", "Follow an execution", {"200": SSE, "404": NOT_FOUND}, [EXEC_ID])},
        f"{e}/{{namespace}}/{{flowId}}": {"post": _op("Executions", "Create an execution", {
            "200": _json(_ref("Execution")), "400": BAD, "404": NOT_FOUND, "409": _err("Flow disabled"),
            "413": _err("Too large"), "415": _err("Not JSON"), "422": _err("Invalid inputs")},
            [NS, FLOW_ID, WAIT, _query("revision", {"type": "integer", "minimum": 1, "maximum": 1000000000}),
             {"name": "labels", "in": "query", "schema": {"type": "array", "items": {"type": "string", "pattern": "^[^:]+:.*$"}},
              "style": "form", "explode": True},
             TIMEOUT], INPUTS_BODY)},
        f"{e}/{{executionId}}": {"get": _op("Executions", "Get an execution", {"200": _json(_ref("Execution")), "404": NOT_FOUND}, [EXEC_ID])},
        "/api/v1/logs/{executionId}": {"get": _op("Logs", "Logs of an execution", {
            "200": _json({"type": "array", "items": _ref("Log")}), "400": BAD, "404": NOT_FOUND}, [EXEC_ID, *_LOG_PARAMS])},
        "/api/v1/logs/{executionId}/follow": {"get": _op("Logs", "Follow logs", {"200": SSE, "400": BAD, "404": NOT_FOUND},
                                                         [EXEC_ID, *_LOG_PARAMS])},
        "/api/v1/triggers/search": {"get": _op("Triggers", "Search triggers", {"200": _json(_page("Trigger")), "400": BAD},
                                               [_query("namespace", {"type": "string"}), _query("flowId", {"type": "string"}), *PAGE])},
        "/api/v1/triggers/{namespace}/{flowId}": {"get": _op("Triggers", "Triggers of a flow", {
            "200": _json({"type": "array", "items": _ref("Trigger")}), "404": NOT_FOUND}, [NS, FLOW_ID])},
        f"{t}/enable": {"post": _op("Triggers", "Enable a trigger", trig_ok, TRIGGER)},
        f"{t}/disable": {"post": _op("Triggers", "Disable a trigger", trig_ok, TRIGGER)},
        f"{t}/backfill": {
            "post": _op("Triggers", "Start a backfill", {**trig_ok, "400": BAD, "409": _err("No scheduler"),
                                                         "413": _err("Too large"), "415": _err("Not JSON"),
                                                         "422": _err("Invalid backfill")}, TRIGGER,
                        {"required": True, "content": {JSON: {"schema": _ref("Backfill")}}}),
            "delete": _op("Triggers", "Cancel a backfill", trig_ok, TRIGGER)},
        f"{t}/backfill/pause": {"post": _op("Triggers", "Pause a backfill", trig_ok, TRIGGER)},
        f"{t}/backfill/unpause": {"post": _op("Triggers", "Unpause a backfill", trig_ok, TRIGGER)},
    }
    from tiercel.server.namespaces import paths as namespace_paths
    from tiercel.server.views import paths as ui_paths

    paths.update(namespace_paths())
    paths.update(ui_paths())
    _secure(paths)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Tiercel API", "version": __version__,
                 "description": "Flows, executions, logs, webhooks and triggers, in Kestra's API shape."},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `tiercel tokens create`"},
            "basic": {"type": "http", "scheme": "basic", "description": "A user from `tiercel users add`"},
            "session": {"type": "apiKey", "in": "cookie", "name": "tiercel_session",
                        "description": "POST /api/v1/auth/login; changes also need the X-CSRF-Token header"}}},
        "security": [{"bearer": []}, {"basic": []}, {"session": []}],
    }


def _secure(paths: dict[str, Any]) -> None:
    """Each operation's answers when authentication is on: public ones need none, the others 401/403/429."""
    from tiercel.server.auth import RULES

    for path, operations in paths.items():
        for method, op in operations.items():
            rule = RULES.get((method.upper(), path))
            if rule in ("public", "webhook"):
                op["security"] = []
                continue
            op["responses"].setdefault("401", _err("Authentication required, or wrong credentials"))
            op["responses"].setdefault("403", _err("Role too low, or missing CSRF token"))
            op["responses"].setdefault("429", _err("Too many failed credentials from this client"))


_LOG_PARAMS = [_query("minLevel", {"type": "string", "enum": ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]}),
               _query("taskId", {"type": "string"}),
               _query("after", {"type": "integer", "description": "Only entries with an id above this one."})]


def _page(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["results", "total"],
            "properties": {"results": {"type": "array", "items": _ref(item)}, "total": {"type": "integer"}}}


_NSTR = {"type": "string", "nullable": True}
_NUM = {"type": "number", "nullable": True}
SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
    "Flow": {"type": "object", "required": ["id", "namespace", "revision", "source"], "additionalProperties": True,
             "properties": {"id": {"type": "string"}, "namespace": {"type": "string"}, "revision": {"type": "integer"},
                            "source": {"type": "string"}, "updated": _NSTR, "deleted": {"type": "boolean"}}},
    "Validation": {"type": "object", "properties": {
        "index": {"type": "integer"}, "flow": _NSTR, "namespace": _NSTR, "constraints": _NSTR,
        "errors": {"type": "array", "items": {"type": "object"}}, "warnings": {"type": "array", "items": {"type": "string"}}}},
    "TaskRun": {"type": "object", "properties": {
        "id": {"type": "string"}, "taskId": {"type": "string"}, "parentTaskRunId": _NSTR, "value": _NSTR,
        "iteration": {"type": "integer", "nullable": True}, "state": {"type": "string"},
        "attempts": {"type": "array", "items": {"type": "object"}}, "outputs": {"type": "object"}, "error": _NSTR,
        "startDate": _NSTR, "endDate": _NSTR, "duration": _NUM,
        "metrics": {"type": "array", "description": "What the task recorded (ctx.metric, a script's metrics lines)",
                    "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "type": {"type": "string"}, "value": {"type": "number"},
                        "tags": {"type": "object"}, "timestamp": {"type": "number"}}}}}},
    "Execution": {"type": "object", "required": ["id", "namespace", "flowId", "state"], "properties": {
        "id": {"type": "string"}, "namespace": {"type": "string"}, "flowId": {"type": "string"},
        "flowRevision": {"type": "integer", "nullable": True}, "state": STATE, "inputs": {"type": "object"},
        "outputs": {"type": "object"}, "labels": {"type": "object"},
        "trigger": {"type": "object", "nullable": True, "properties": {
            "id": {"type": "string"}, "type": {"type": "string"}, "variables": {"type": "object"}}},
        "parentId": _NSTR, "originalId": _NSTR, "error": _NSTR, "startDate": _NSTR, "endDate": _NSTR,
        "duration": _NUM, "taskRuns": {"type": "array", "items": _ref("TaskRun")}}},
    "Log": {"type": "object", "properties": {
        "id": {"type": "integer"}, "taskRunId": _NSTR, "taskId": _NSTR, "attemptNumber": {"type": "integer", "nullable": True},
        "level": {"type": "string"}, "message": {"type": "string"}, "timestamp": {"type": "number"}}},
    "Trigger": {"type": "object", "required": ["namespace", "flowId", "triggerId", "type", "disabled"], "properties": {
        "namespace": {"type": "string"}, "flowId": {"type": "string"}, "triggerId": {"type": "string"},
        "type": {"type": "string"}, "disabled": {"type": "boolean"}, "flowRevision": {"type": "integer"},
        "nextExecutionDate": _NSTR, "lastTriggeredDate": _NSTR, "executionId": _NSTR, "updatedDate": _NSTR,
        "backfill": {"type": "object"}, "health": {"type": "object"}}},
    "Login": {"type": "object", "required": ["username", "password"], "properties": {
        "username": {"type": "string"}, "password": {"type": "string", "format": "password"}}},
    "Me": {"type": "object", "required": ["username", "authentication", "grants"], "properties": {
        "username": {"type": "string", "nullable": True}, "authentication": {"type": "boolean"}, "csrfToken": {"type": "string"},
        "grants": {"type": "array", "items": {"type": "object", "properties": {
            "role": {"type": "string", "enum": ["viewer", "runner", "editor", "admin"]}, "namespace": {"type": "string"}}}}}},
    "TokenRequest": {"type": "object", "required": ["role"], "properties": {
        "role": {"type": "string", "enum": ["viewer", "runner", "editor", "admin"]},
        "namespace": {"type": "string"}, "expires": {"type": "string", "pattern": "^(P[0-9]{1,4}D|PT[0-9]{1,6}[HMS])$",
                    "description": "ISO-8601 duration (P90D, PT12H)"},
        "name": {"type": "string"}}},
    "Token": {"type": "object", "properties": {
        "id": {"type": "string"}, "name": _NSTR, "role": {"type": "string"}, "namespace": {"type": "string"},
        "createdBy": _NSTR, "created": {"type": "number"}, "expires": _NUM, "revoked": _NUM}},
    "NewToken": {"type": "object", "required": ["id", "token"], "properties": {
        "id": {"type": "string"}, "token": {"type": "string"}, "role": {"type": "string"},
        "namespace": {"type": "string"}, "expires": _NUM}},
    "AuditEntry": {"type": "object", "properties": {
        "id": {"type": "integer"}, "date": {"type": "number"}, "actor": {"type": "string"}, "method": {"type": "string"},
        "path": {"type": "string"}, "namespace": _NSTR, "status": {"type": "integer"}, "client": _NSTR}},
    "Backfill": {"type": "object", "required": ["start"], "properties": {
        "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"},
        "inputs": {"type": "object"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
}

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tiercel API</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:64rem;color:#222}
h1{font-size:1.4rem} details{border:1px solid #ddd;border-radius:6px;margin:.4rem 0;padding:.4rem .8rem}
summary{cursor:pointer} .m{display:inline-block;width:4.5rem;font-weight:600;font-family:monospace}
.get{color:#0a7}.post{color:#07c}.put{color:#c70}.delete{color:#c22} input,textarea{font:13px monospace;width:100%}
textarea{height:6rem} pre{background:#f6f6f6;padding:.6rem;overflow:auto;max-height:24rem} button{margin:.4rem 0}
</style></head><body>
<h1>Tiercel API</h1><p>Every operation of <a href="openapi.json">openapi.json</a>; fill the parameters and send.</p>
<div id="ops">loading…</div>
<script>
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
fetch('openapi.json').then(r => r.json()).then(spec => {
  const root = document.getElementById('ops'); root.innerHTML = '';
  for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) {
    const d = document.createElement('details');
    const params = op.parameters || [];
    const body = op.requestBody ? Object.keys(op.requestBody.content)[0] : null;
    d.innerHTML = `<summary><span class="m ${method}">${method.toUpperCase()}</span> ${esc(path)} — ${esc(op.summary)}</summary>` +
      params.map(p => `<label>${esc(p.name)} (${p.in})<input data-in="${p.in}" name="${esc(p.name)}"></label>`).join('') +
      (body ? `<label>body (${esc(body)})<textarea data-body="${esc(body)}"></textarea></label>` : '') +
      `<button>Send</button><pre></pre>`;
    d.querySelector('button').onclick = async () => {
      let url = path; const q = new URLSearchParams();
      for (const i of d.querySelectorAll('input')) {
        if (i.dataset.in === 'path') url = url.replace('{' + i.name + '}', encodeURIComponent(i.value));
        else if (i.value) q.append(i.name, i.value);
      }
      const init = {method: method.toUpperCase(), headers: {}};
      const ta = d.querySelector('textarea');
      if (ta && ta.value) { init.body = ta.value; init.headers['Content-Type'] = ta.dataset.body === '*/*' ? 'application/json' : ta.dataset.body; }
      const res = await fetch(url + (q.toString() ? '?' + q : ''), init);
      d.querySelector('pre').textContent = res.status + ' ' + res.statusText + '\\n' + await res.text();
    };
    root.appendChild(d);
  }
});
</script></body></html>
"""
