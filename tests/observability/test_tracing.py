"""OpenTelemetry traces: the span tree of an execution (Parallel, Subflow, a retried task), TRACEPARENT in scripts."""

from __future__ import annotations

import pytest

PARENT = """
id: parent
namespace: test.trace
tasks:
  - id: both
    type: core.Parallel
    tasks:
      - {id: left, type: core.Log, message: left}
      - {id: right, type: core.Log, message: right}
  - id: child
    type: core.Subflow
    namespace: test.trace
    flowId: child
  - id: flaky
    type: core.Fail
    allowFailure: true
    retry: {type: constant, interval: PT0.01S, maxAttempt: 2}
  - id: script
    type: scripts.Shell
    commands:
      - echo "::{\\"outputs\\":{\\"traceparent\\":\\"$TRACEPARENT\\"}}::"
"""
CHILD = """
id: child
namespace: test.trace
tasks:
  - {id: inner, type: core.Log, message: inside}
"""


@pytest.fixture
def spans():
    """Spans recorded in memory while the test runs (tracing is off again afterwards)."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tiercel.observability import tracing
    from tiercel.plugins import set_registry

    exporter = InMemorySpanExporter()
    tracing.configure(exporter, batch=False)
    set_registry(None)  # the next registry registers the tracing plugin
    try:
        yield exporter
    finally:
        tracing.configure(None)
        set_registry(None)


def test_span_tree_of_an_execution(tmp_path, spans):
    from tiercel.observability import tracing
    from tiercel.testing import run_flow

    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "child.yaml").write_text(CHILD)
    (tmp_path / "flows" / "parent.yaml").write_text(PARENT)
    result = run_flow(tmp_path / "flows" / "parent.yaml", home=tmp_path / "home")
    assert result["state"] == "WARNING", result
    finished = spans.get_finished_spans()
    by_name: dict[str, list] = {}
    for s in finished:
        by_name.setdefault(s.name.split(" ")[0], []).append(s)
    root = by_name["execution"]
    parent_root = next(s for s in root if s.attributes["tiercel.flow.id"] == "parent")
    child_root = next(s for s in root if s.attributes["tiercel.flow.id"] == "child")
    trace = parent_root.context.trace_id
    assert all(s.context.trace_id == trace for s in finished), "one trace for the execution and its subflow"
    assert parent_root.parent is None
    # top-level task runs hang off the execution; the Parallel's branches off the Parallel's attempt
    for task in ("both", "child", "flaky", "script"):
        (span,) = by_name[task] if task != "flaky" else by_name[task][:1]
        assert span.parent.span_id == parent_root.context.span_id, task
    (both,) = by_name["both"]
    for branch in ("left", "right"):
        (span,) = by_name[branch]
        assert span.parent.span_id == both.context.span_id
        assert both.start_time <= span.start_time and span.end_time <= both.end_time
    # the subflow's execution under the Subflow task run, its task under it
    (subflow,) = by_name["child"]
    assert child_root.parent.span_id == subflow.context.span_id
    (inner,) = by_name["inner"]
    assert inner.parent.span_id == child_root.context.span_id
    # a retried task: one span per attempt, siblings, the failed ones marked as errors
    flaky = sorted(by_name["flaky"], key=lambda s: s.attributes["tiercel.attempt"])
    assert [s.attributes["tiercel.attempt"] for s in flaky] == [1, 2]
    assert all(s.parent.span_id == parent_root.context.span_id for s in flaky)
    assert all(s.status.status_code.name == "ERROR" for s in flaky)
    # the script saw its own attempt's span as TRACEPARENT
    (script,) = by_name["script"]
    seen = next(t for t in result["taskRuns"] if t["taskId"] == "script")["outputs"]["vars"]["traceparent"]
    assert seen == f"00-{trace:032x}-{script.context.span_id:016x}-01"
    assert seen == tracing.traceparent(result["id"], next(t for t in result["taskRuns"] if t["taskId"] == "script")["id"], 1)
    assert script.attributes["tiercel.task.type"] == "scripts.Shell"


def test_tracing_is_off_by_default(tmp_path, monkeypatch):
    from tiercel.observability import builtin_hooks, tracing
    from tiercel.testing import run_flow

    monkeypatch.delenv("TIERCEL_TRACING", raising=False)
    assert not tracing.enabled()
    assert "on_task_run_end" in builtin_hooks()  # metrics, not tracing
    script = """
id: s
namespace: t
tasks:
  - id: s
    type: scripts.Shell
    commands:
      - echo "::{\\"outputs\\":{\\"tp\\":\\"${TRACEPARENT:-none}\\"}}::"
"""
    result = run_flow(script, home=tmp_path / "home")
    assert result["taskRuns"][0]["outputs"]["vars"]["tp"] == "none"


def test_console_exporter_from_the_environment(tmp_path):
    """TIERCEL_TRACING=console prints each span as JSON on stderr."""
    import json
    import subprocess
    import sys

    flow = tmp_path / "f.yaml"
    flow.write_text("id: f\nnamespace: t\ntasks:\n  - {id: a, type: core.Log, message: hi}\n")
    import os

    env = {**os.environ, "TIERCEL_TRACING": "console", "TIERCEL_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "run", str(flow), "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    decoder, text, names = json.JSONDecoder(), out.stderr, []
    i = text.find("{")
    while i >= 0:
        obj, end = decoder.raw_decode(text, i)
        names.append(obj.get("name"))
        i = text.find("{", end)
    assert "a core.Log" in names and "execution t.f" in names


def test_http_tasks_send_traceparent(tmp_path, spans):
    import http.server
    import threading

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            seen.append(self.headers.get("traceparent"))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        from tiercel.testing import run_flow

        result = run_flow(f"id: h\nnamespace: t\ntasks:\n  - id: call\n    type: http.Request\n"
                          f"    uri: http://127.0.0.1:{httpd.server_port}/\n", home=tmp_path / "home")
    finally:
        httpd.shutdown()
    assert result["state"] == "SUCCESS", result
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("call ")]
    assert seen == [f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"]
