"""RunContext.track / leftovers: what an attempt started outside its worker survives the attempt.

A runner records the container, pod or process group it started; the next attempt of the
same task run (a retry, or a re-dispatch after its worker died) sees it in ``ctx.leftovers``
and cleans up or re-attaches before starting anew.
"""

from __future__ import annotations

from tiercel.plugins import load_registry, set_registry
from tiercel.testing import run_flow, task_run

TRACKER = """
from tiercel import Task, TaskError, hookimpl

class Tracker(Task):
    '''Track a pretend container, fail the first attempt, report what it found.'''
    type = "track.Tracker"

    async def run(self, ctx):
        seen = ctx.leftovers
        ctx.track("container", f"box-{ctx.attempt}")
        ctx.track("scratch", "forgotten below")
        ctx.track("scratch", None)
        if ctx.attempt == 1:
            raise TaskError("first attempt dies with its container still running")
        ctx.track("container", None)  # cleaned up: nothing left for a later attempt
        return {"leftovers": seen}

@hookimpl
def register_tasks(register):
    register(Tracker)
"""

FLOW = """
id: tracked
namespace: test.track
tasks:
  - id: t
    type: track.Tracker
    retry: {type: constant, interval: PT0.01S, maxAttempt: 3}
"""


def test_track_persists_and_the_next_attempt_sees_leftovers(make_plugin, tmp_path):
    set_registry(load_registry(make_plugin("tiercel-track", TRACKER)))
    try:
        ex = run_flow(FLOW, home=tmp_path)
    finally:
        set_registry(None)
    assert ex["state"] == "SUCCESS", ex
    run = task_run(ex, "t")
    assert run["outputs"]["leftovers"] == [{"container": "box-1"}]
    import sqlite3

    rows = sqlite3.connect(tmp_path / "tiercel.db").execute(
        "SELECT attempt, resources FROM attempts ORDER BY attempt").fetchall()
    assert rows == [(1, '{"container":"box-1"}'), (2, None)]


CRASHER = """
import asyncio
from tiercel import Task, hookimpl

class Holder(Task):
    '''Track a pretend pod, then hold it until killed (or report the leftovers it inherited).'''
    type = "track.Holder"

    async def run(self, ctx):
        seen = ctx.leftovers
        ctx.track("pod", f"pod-{ctx.attempt}")
        if not seen:
            await asyncio.sleep(60)
        ctx.track("pod", None)
        return {"leftovers": seen}

@hookimpl
def register_tasks(register):
    register(Holder)
"""


def test_leftovers_survive_a_killed_worker(tmp_path):
    """kill -9 a `tiercel run` while its attempt holds something; the resumed attempt finds it."""
    import json
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from tiercel.testing import tiercel

    site = tmp_path / "site"
    site.mkdir()
    (site / "tiercel_crasher.py").write_text(CRASHER)
    info = site / "tiercel_crasher-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiercel-crasher\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[tiercel]\ncrasher = tiercel_crasher\n")
    env = {"PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "TIERCEL_CACHE_DIR": str(tmp_path / "cache")}
    flow = tmp_path / "held.yaml"
    flow.write_text("id: held\nnamespace: test.track\ntasks:\n  - {id: h, type: track.Holder}\n")
    home = tmp_path / "home"
    runner = subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", "run", str(flow), "--json"],
                              env={**os.environ, **env, "TIERCEL_HOME": str(home)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:  # until the attempt has tracked its pod
        assert time.monotonic() < deadline and runner.poll() is None, runner.communicate()
        try:
            row = sqlite3.connect(home / "tiercel.db").execute("SELECT execution_id, resources FROM attempts").fetchone()
        except sqlite3.Error:
            row = None
        if row and row[1]:
            break
        time.sleep(0.05)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    resumed = tiercel("executions", "resume", row[0], "--json", home=home, env=env)
    after = json.loads(resumed.stdout)
    assert after["state"] == "SUCCESS", resumed.stderr
    assert task_run(after, "h")["outputs"]["leftovers"] == [{"pod": "pod-1"}]
