"""A plugin outside the kernel adds a flowable and a trigger kind, and both work end to end.

The plugin (tests/plugins/testkit/tiercel_testkit.py) is installed for a real `tiercel run` and a
real `tiercel server` through PYTHONPATH and a dist-info entry point: no kernel change, no
kernel name of it anywhere in the engine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tiercel.testing import TiercelServer, run_json, task_run, wait_triggered

KIT = Path(__file__).parent / "testkit"


@pytest.fixture
def testkit_env(tmp_path):
    """Environment variables that install the testkit plugin into subprocesses."""
    site = tmp_path / "site"
    info = site / "tiercel_testkit-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiercel-testkit\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[tiercel]\ntestkit = tiercel_testkit\n")
    path = os.pathsep.join([str(site), str(KIT), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path, "TIERCEL_CACHE_DIR": str(tmp_path / "cache")}


def test_a_plugin_flowable_resolves_itself(tmp_path, testkit_env):
    flow = tmp_path / "repeat.yaml"
    flow.write_text("""\
id: repeat
namespace: test.protocols
tasks:
  - id: rounds
    type: testkit.Repeat
    times: "{{ 2 + 1 }}"
    concurrent: 2
    tasks:
      - id: say
        type: core.Return
        format: "hello from {{ taskrun.value }}"
  - id: after
    type: core.Log
    message: "{{ outputs.rounds.done }} rounds, last said {{ outputs.say['round-2'].value }}"
""")
    code, ex = run_json(flow, home=tmp_path / "home", env=testkit_env)
    assert code == 0 and ex["state"] == "SUCCESS", ex
    says = sorted((tr["value"], tr["outputs"]["value"]) for tr in ex["taskRuns"] if tr["taskId"] == "say")
    assert says == [("round-0", "hello from round-0"), ("round-1", "hello from round-1"),
                    ("round-2", "hello from round-2")]
    rounds = task_run(ex, "rounds")
    assert rounds["outputs"] == {"done": 3}
    assert all(tr["parentTaskRunId"] == rounds["id"] for tr in ex["taskRuns"] if tr["taskId"] == "say")


def test_a_plugin_flowable_failure_stops_it(tmp_path, testkit_env):
    flow = tmp_path / "repeat_fail.yaml"
    flow.write_text("""\
id: repeat_fail
namespace: test.protocols
tasks:
  - id: rounds
    type: testkit.Repeat
    times: 4
    tasks:
      - id: maybe
        type: core.Fail
        condition: "{{ taskrun.value == 'round-1' }}"
""")
    code, ex = run_json(flow, home=tmp_path / "home", env=testkit_env)
    assert code == 1 and ex["state"] == "FAILED"
    assert sorted(tr["value"] for tr in ex["taskRuns"] if tr["taskId"] == "maybe") == ["round-0", "round-1"]


def test_a_plugin_schedule_kind_fires_once_per_date(tmp_path, testkit_env):
    server = TiercelServer(tmp_path / "home", env=testkit_env).start()
    try:
        deployed = server.deploy("""\
id: ticking
namespace: test.protocols
tasks:
  - id: log
    type: core.Log
    message: "tick {{ trigger.date }}"
triggers:
  - id: every
    type: testkit.Every
    seconds: 1
""")
        assert deployed["revision"] == 1
        ticks = wait_triggered(tmp_path / "home", "ticking", 3, timeout=20, server=server)
        assert len(ticks) >= 3
        dates = [t["date"] for t in ticks]
        assert len(set(dates)) == len(dates)  # one execution per date
        assert all(d.endswith("+00:00") for d in dates)  # the trigger's own zone
        with server.client() as api:
            listed = api.get("/api/v1/triggers/test.protocols/ticking").json()
        assert listed[0]["type"] == "testkit.Every" and listed[0]["nextExecutionDate"] is not None
    finally:
        server.stop()
