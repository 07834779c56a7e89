"""HTTP tasks and trigger against a real server on loopback, through real flows."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from tiercel.flow import FlowValidationError, load_flow
from tiercel.testing import TriggerHarness, read_file, run_flow, run_json, task_run


def flow(tasks: str, flow_id: str = "http_test") -> str:
    return f"id: {flow_id}\nnamespace: company.team\ntasks:\n{tasks}"


def run(source: str, tmp_path, **kw):
    return run_flow(source, home=tmp_path / "home", **kw)


def read(tmp_path, uri: str) -> bytes:
    return read_file(uri, tmp_path / "home")


def test_get_json_and_text(server, tmp_path):
    ex = run(flow(f"""\
  - id: json
    type: http.Request
    uri: {server.url}/json
  - id: text
    type: http.Request
    uri: "{server.url}/text"
  - id: use
    type: core.Return
    format: "{{{{ outputs.json.body.hello }}}} {{{{ outputs.json.code }}}} {{{{ outputs.json.headers['content-type'][0] }}}}"
"""), tmp_path)
    assert ex["state"] == "SUCCESS", ex
    out = task_run(ex, "json")["outputs"]
    assert out["code"] == 200 and out["body"] == {"hello": "world", "n": 1} and "uri" not in out
    assert task_run(ex, "text")["outputs"]["body"] == "plain text ✓"
    assert task_run(ex, "use")["outputs"]["value"] == "world 200 application/json"


def test_methods_headers_and_bodies(server, tmp_path):
    ex = run(flow(f"""\
  - id: post_json
    type: http.Request
    uri: {server.url}/echo?x=1
    method: post
    headers:
      X-Trace: "{{{{ 40 + 2 }}}}"
    body: '{{"name": "ada"}}'
  - id: put_text
    type: http.Request
    uri: {server.url}/echo
    method: PUT
    contentType: text/csv
    body: "a,b"
  - id: form
    type: http.Request
    uri: {server.url}/echo
    method: POST
    formData:
      name: ada
      age: 36
  - id: delete
    type: io.kestra.plugin.core.http.Request
    uri: {server.url}/echo
    method: DELETE
"""), tmp_path)
    assert ex["state"] == "SUCCESS", ex
    posted = task_run(ex, "post_json")["outputs"]["body"]
    assert posted["method"] == "POST" and posted["query"] == "x=1" and posted["body"] == '{"name": "ada"}'
    assert posted["headers"]["x-trace"] == "42" and posted["headers"]["content-type"] == "application/json"
    put = task_run(ex, "put_text")["outputs"]["body"]
    assert put["method"] == "PUT" and put["headers"]["content-type"] == "text/csv" and put["body"] == "a,b"
    form = task_run(ex, "form")["outputs"]["body"]
    assert form["body"] == "name=ada&age=36"
    assert form["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert task_run(ex, "delete")["outputs"]["body"]["method"] == "DELETE"


def test_multipart_upload_of_a_stored_file(server, tmp_path):
    ex = run(flow(f"""\
  - id: make
    type: http.Download
    uri: {server.url}/file
  - id: upload
    type: http.Request
    uri: {server.url}/echo
    method: POST
    contentType: multipart/form-data
    formData:
      title: report
      file: "{{{{ outputs.make.uri }}}}"
"""), tmp_path)
    assert ex["state"] == "SUCCESS", ex
    echoed = task_run(ex, "upload")["outputs"]["body"]
    assert echoed["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert 'name="title"' in echoed["body"] and "report" in echoed["body"]
    assert 'filename="report.csv"' in echoed["body"] and "1,ada" in echoed["body"]


def test_auth_basic_and_bearer(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCEL_SECRET_HTTP_PASSWORD", "pa55")
    ex = run(flow(f"""\
  - id: basic
    type: http.Request
    uri: {server.url}/basic
    auth: {{type: basic, username: user, password: "{{{{ secret('HTTP_PASSWORD') }}}}"}}
  - id: bearer
    type: http.Request
    uri: {server.url}/bearer
    options:
      auth: {{type: BEARER, token: t0ken}}
  - id: refused
    type: http.Request
    uri: {server.url}/basic
    auth: {{type: basic, username: user, password: wrong}}
"""), tmp_path)
    assert task_run(ex, "basic")["outputs"]["body"] == {"user": "user"}
    assert task_run(ex, "bearer")["outputs"]["body"] == {"ok": True}
    error = task_run(ex, "refused")["error"]
    assert "returned 401 Unauthorized: who are you?" in error


def test_error_status_fails_with_the_status_and_a_body_excerpt(server, tmp_path):
    ex = run(flow(f"""\
  - id: bad
    type: http.Request
    uri: {server.url}/status/503
"""), tmp_path)
    assert ex["state"] == "FAILED"
    error = task_run(ex, "bad")["error"]
    assert f"GET {server.url}/status/503 returned 503 Service Unavailable: status 503 body yyy" in error
    assert "allowFailed" in error and len(error) < 800


def test_allow_failed_returns_the_response(server, tmp_path):
    ex = run(flow(f"""\
  - id: missing
    type: http.Request
    uri: {server.url}/status/404
    allowFailed: true
  - id: kestra_style
    type: http.Request
    uri: {server.url}/status/500
    options: {{allowFailed: true}}
"""), tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "missing")["outputs"]["code"] == 404
    assert task_run(ex, "kestra_style")["outputs"]["body"].startswith("status 500 body")


def test_redirects_followed_or_not(server, tmp_path):
    ex = run(flow(f"""\
  - id: follow
    type: http.Request
    uri: {server.url}/redirect
  - id: stay
    type: http.Request
    uri: {server.url}/redirect
    options: {{followRedirects: false}}
"""), tmp_path)
    assert task_run(ex, "follow")["outputs"]["body"] == {"hello": "world", "n": 1}
    stay = task_run(ex, "stay")["outputs"]
    assert stay["code"] == 302 and stay["headers"]["location"] == ["/json"]


def test_large_and_binary_bodies_go_to_internal_storage(server, tmp_path):
    ex = run(flow(f"""\
  - id: big
    type: http.Request
    uri: {server.url}/big
  - id: binary
    type: http.Request
    uri: {server.url}/binary
"""), tmp_path)
    assert ex["state"] == "SUCCESS", ex
    big = task_run(ex, "big")["outputs"]
    assert big["body"] is None and big["length"] == server.BIG and big["uri"].startswith("tiercel://company/team/http_test/")
    assert read(tmp_path, big["uri"]) == b"x" * server.BIG
    binary = task_run(ex, "binary")["outputs"]
    assert binary["body"] is None and read(tmp_path, binary["uri"]) == server.BINARY


def test_download_streams_into_storage(server, tmp_path):
    ex = run(flow(f"""\
  - id: file
    type: http.Download
    uri: {server.url}/file
  - id: big
    type: io.kestra.plugin.core.http.Download
    uri: {server.url}/big
  - id: empty
    type: http.Download
    uri: {server.url}/empty
"""), tmp_path)
    file = task_run(ex, "file")["outputs"]
    assert file["uri"].endswith("/report.csv") and file["code"] == 200 and file["length"] == 14
    assert read(tmp_path, file["uri"]) == b"id,name\n1,ada\n"
    big = task_run(ex, "big")["outputs"]
    assert big["uri"].endswith("/big") and big["length"] == server.BIG
    assert "empty body" in task_run(ex, "empty")["error"]


def test_an_unreachable_host_names_the_host_and_the_timeout(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ex = run(flow(f"""\
  - id: down
    type: http.Request
    uri: http://127.0.0.1:{port}/x
    options: {{connectTimeout: PT2S}}
"""), tmp_path)
    error = task_run(ex, "down")["error"]
    assert f"cannot connect to 127.0.0.1:{port}" in error and "2 s" in error


def test_a_silent_server_names_the_read_timeout(server, tmp_path):
    start = time.monotonic()
    ex = run(flow(f"""\
  - id: slow
    type: http.Request
    uri: {server.url}/slow?8
    options: {{readTimeout: PT0.5S}}
"""), tmp_path)
    assert time.monotonic() - start < 6  # well before the server's answer
    error = task_run(ex, "slow")["error"]
    assert f"127.0.0.1:{server.url.rsplit(':', 1)[1]} sent nothing for 0.5 s" in error


def test_bad_properties_are_refused_at_load():
    with pytest.raises(FlowValidationError) as err:
        load_flow(flow("  - id: bad\n    type: http.Request\n    uri: http://x\n    method: FETCH\n"))
    assert "method" in str(err.value)
    with pytest.raises(FlowValidationError) as err:
        load_flow(flow("  - id: bad\n    type: http.Request\n    uri: http://x\n    auth: {type: digest}\n"))
    assert "auth" in str(err.value)


def test_through_the_cli(server, tmp_path):
    path = tmp_path / "cli.yaml"
    path.write_text(flow(f"  - id: get\n    type: http.Request\n    uri: {server.url}/json\n", flow_id="cli_http"))
    code, ex = run_json(path, home=tmp_path / "home")
    assert code == 0 and task_run(ex, "get")["outputs"]["body"]["hello"] == "world"


# --- the trigger --------------------------------------------------------------------------

TRIGGER_FLOW = """\
id: watch_version
namespace: company.team
variables:
  base: {url}
tasks:
  - id: log
    type: core.Log
    message: "version {{{{ trigger.body.version }}}}"
triggers:
  - id: watch
    type: http.Trigger
    uri: "{{{{ vars.base }}}}/version"
    interval: PT1S
{extra}"""


def poll_and_deliver(h: TriggerHarness):
    """Poll once and deliver what came, as the trigger runtime does: (event, execution JSON) or (None, None)."""

    async def go():
        event = await h.poll_once()
        if event is None:
            return None, None
        return event, await h.deliver(event)

    return asyncio.run(go())


def test_trigger_starts_once_per_distinct_response(server, tmp_path):
    with TriggerHarness(TRIGGER_FLOW.format(url=server.url, extra=""), tmp_path / "home") as h:
        event, ex = poll_and_deliver(h)
        assert event.variables["code"] == 200 and event.variables["body"] == {"version": 1}
        assert event.variables["headers"]["content-type"] == ["application/json"]
        assert ex is not None and ex["trigger"]["variables"]["body"] == {"version": 1}
        again, duplicate = poll_and_deliver(h)
        assert again.key == event.key and duplicate is None  # same response: no second execution
        server.state["version"] = 2
        changed, ex2 = poll_and_deliver(h)
        assert changed.key != event.key and ex2 is not None
        assert len(h.executions()) == 2
        server.state["code"] = 500  # default condition: status < 400
        assert poll_and_deliver(h) == (None, None)


def test_trigger_response_condition(server, tmp_path):
    source = TRIGGER_FLOW.format(url=server.url, extra='    responseCondition: "{{ response.body.version >= 3 }}"\n')
    with TriggerHarness(source, tmp_path / "home") as h:
        assert poll_and_deliver(h) == (None, None)
        server.state["version"] = 3
        event, ex = poll_and_deliver(h)
        assert ex is not None and event.variables["body"]["version"] == 3


def test_trigger_names_an_unreachable_host(tmp_path):
    from tiercel.api import TaskError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with TriggerHarness(TRIGGER_FLOW.format(url=f"http://127.0.0.1:{port}", extra=""), tmp_path / "home") as h:
        with pytest.raises(TaskError, match=f"cannot connect to 127.0.0.1:{port}"):
            poll_and_deliver(h)


def test_examples_are_valid():
    from tiercel_http.components import Download, Request, Trigger

    for cls in (Request, Download, Trigger):
        assert cls.examples
        for example in cls.examples:
            load_flow(example.flow)


def test_readme_flows_run_against_a_local_server(server, tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    sources = [s.replace("http://127.0.0.1:8000", server.url) for s in re.findall(r"```yaml\n(.*?)```", readme, re.S)]
    assert len(sources) == 3
    for source in sources:
        flow_ = load_flow(source)
        if not flow_.triggers:
            ex = run(source, tmp_path)
            assert ex["state"] == "SUCCESS", ex
    with TriggerHarness(sources[2], tmp_path / "home") as h:
        event, ex = poll_and_deliver(h)
        assert ex is not None and event.variables["body"] == "<html><body>index</body></html>"


def test_query_params_as_kestra_writes_them(server, tmp_path):
    ex = run(flow(f"""\
  - id: search
    type: io.kestra.plugin.core.http.Request
    uri: "{server.url}/echo?fixed=1"
    params:
      q: "{{{{ 'tiercel flows' }}}}"
      tag: [a, b]
"""), tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "search")["outputs"]["body"]["query"] == "fixed=1&q=tiercel+flows&tag=a&tag=b"
