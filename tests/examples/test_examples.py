"""Every flow of examples/ is valid and runs as its `# run:` lines say (real subprocesses; PostgreSQL and
HTTP servers on loopback where an example needs them)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tiercel.testing.harness import tiercel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.yaml"))
RUNS = [(path, line) for path in EXAMPLES
        for line in re.findall(r"^# run: tiercel (run .+)$", path.read_text(), re.M)
        if path.name != "approval.yaml"]  # it pauses: test_approval_pauses_then_resumes runs it


def test_there_are_examples_and_each_is_valid():
    assert len(EXAMPLES) >= 9
    done = tiercel("validate", *map(str, EXAMPLES))
    assert done.returncode == 0, done.stdout + done.stderr


class _Api(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_GET(self) -> None:  # the products API of etl_postgres.yaml
        body = json.dumps([{"id": 1, "title": "tea", "price": 4.5}, {"id": 2, "title": "cake", "price": 10},
                           {"id": 3, "title": "jam", "price": 3.25}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # an alert webhook
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(("path", "line"), RUNS, ids=[f"{p.relative_to(ROOT / 'examples')}:{line[4:60]}" for p, line in RUNS])
def test_each_example_runs_as_its_run_line_says(path, line, tmp_path, request):
    command, _, note = line.partition("   (")
    args = shlex.split(command)
    if "api=" in command:
        api_url = request.getfixturevalue("api")
        db = request.getfixturevalue("postgres_url")
        args = [re.sub(r"^api=.*", f"api={api_url}/products.json", a) for a in args]
        args = [re.sub(r"^db=.*", f"db={db}", a) for a in args] + ["-i", f"table=p_{tmp_path.name[-8:].lower()}"]
    done = tiercel(*args, "--json", home=tmp_path / "home", cwd=ROOT)
    expected = 1 if "ends FAILED" in note else 0
    assert done.returncode == expected, f"`tiercel {command}`:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    ex = json.loads(done.stdout)
    if path.name == "etl_postgres.yaml":
        assert ex["outputs"] == {"products": 3}
        again = tiercel(*args, "--json", home=tmp_path / "home", cwd=ROOT)  # the upsert adds nothing twice
        assert json.loads(again.stdout)["outputs"] == {"products": 3}
    if path.name == "greet_team.yaml":
        assert ex["outputs"] == {"count": 2}


def test_retries_alert_a_webhook_when_the_flow_fails(api, tmp_path):
    _Api.received.clear()
    done = tiercel("run", "examples/retries.yaml", "-i", "fail=true", "-i", f"alert_url={api}/alert", "--json",
                   home=tmp_path, cwd=ROOT)
    ex = json.loads(done.stdout)
    assert ex["state"] == "FAILED"
    flaky = next(t for t in ex["taskRuns"] if t["taskId"] == "flaky")
    assert flaky["state"] == "SUCCESS" and len(flaky["attempts"]) == 3
    assert _Api.received == [{"text": f"company.team.retries failed: execution {ex['id']}"}]


def test_approval_pauses_then_resumes(tmp_path):
    home = tmp_path / "home"
    runs = {}
    for decision, state in (("true", "SUCCESS"), ("false", "FAILED")):
        proc = subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", "run", "examples/approval.yaml", "-i", "amount=1200",
                                 "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**__import__("os").environ, "TIERCEL_HOME": str(home)})
        deadline = time.monotonic() + 60
        while True:
            listed = tiercel("executions", "list", "--state", "PAUSED", "--json", home=home)
            rows = json.loads(listed.stdout)["results"] if listed.returncode == 0 else []
            if rows:
                break
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.3)
        resumed = tiercel("executions", "resume", rows[0]["id"], "-i", f"approved={decision}", "-i", "reason=too much",
                          home=home)
        assert resumed.returncode == 0, resumed.stderr
        out, err = proc.communicate(timeout=60)
        runs[decision] = json.loads(out)
        assert runs[decision]["state"] == state, err
    assert runs["true"]["outputs"] == {"approved": True}
    assert "refused: too much" in runs["false"]["error"]
