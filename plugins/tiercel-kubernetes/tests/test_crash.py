"""A worker SIGKILLed mid-task leaves its pod running; the resumed attempt deletes it first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tiercel.testing import task_run, tiercel

FLOW = """\
id: crash
namespace: test.kubernetes
inputs:
  - {id: master, type: STRING}
tasks:
  - id: hold
    type: scripts.Shell
    containerImage: tiercel/busybox:test
    taskRunner: {type: kubernetes.Kubernetes, config: {masterUrl: "{{ inputs.master }}", oauthToken: t},
                 pullPolicy: NEVER, killGracePeriod: PT1S}
    commands:
      - if [ {{ taskrun.attemptsCount }} -eq 0 ]; then sleep 300; fi
      - echo done
"""


def _kill_worker_mid_task(cluster, flow_text: str, home: Path) -> str:
    """Run the flow in `tiercel run`, SIGKILL it once its pod runs; return the execution id."""
    flow = home.parent / "crash.yaml"
    flow.write_text(flow_text)
    worker = subprocess.Popen(
        [sys.executable, "-m", "tiercel.cli.main", "run", str(flow), "-i", f"master={cluster.url}", "--json"],
        env={**os.environ, "TIERCEL_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not cluster.running():
            assert worker.poll() is None and time.monotonic() < deadline, "the task's pod never started"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    assert cluster.running(), "the pod died with the worker (nothing to clean up)"
    import sqlite3

    return str(sqlite3.connect(home / "tiercel.db").execute("SELECT id FROM executions").fetchone()[0])


def test_resumed_attempt_deletes_the_pod_a_killed_worker_left(cluster, tmp_path: Path) -> None:
    home = tmp_path / "home"
    execution_id = _kill_worker_mid_task(cluster, FLOW, home)
    resumed = tiercel("executions", "resume", execution_id, "--json", home=home)
    execution = json.loads(resumed.stdout)
    assert execution["state"] == "SUCCESS", resumed.stderr
    assert len(task_run(execution, "hold")["attempts"]) == 2
    for _ in range(100):  # the deleted pod's container stops within its grace period
        if not cluster.running():
            return
        time.sleep(0.05)
    raise AssertionError("the dead worker's pod still runs")


RESUME_FLOW = """\
id: crash_resume
namespace: test.kubernetes
inputs:
  - {id: master, type: STRING}
tasks:
  - id: hold
    type: scripts.Shell
    containerImage: tiercel/busybox:test
    taskRunner: {type: kubernetes.Kubernetes, config: {masterUrl: "{{ inputs.master }}", oauthToken: t},
                 pullPolicy: NEVER, resume: true}
    commands:
      - sleep 2
      - 'echo "::{\\"outputs\\": {\\"attempt\\": {{ taskrun.attemptsCount }}}}::"'
"""


def test_resume_true_reattaches_to_the_pod_instead_of_a_second_run(cluster, tmp_path: Path) -> None:
    home = tmp_path / "home"
    before = len(cluster.started)
    execution_id = _kill_worker_mid_task(cluster, RESUME_FLOW, home)
    resumed = tiercel("executions", "resume", execution_id, "--json", home=home)
    execution = json.loads(resumed.stdout)
    hold = task_run(execution, "hold")
    assert execution["state"] == "SUCCESS", resumed.stderr
    assert len(hold["attempts"]) == 2
    assert hold["outputs"]["vars"] == {"attempt": 0}  # what the first attempt's pod printed
    assert len(cluster.started) - before == 1, "a second pod was started"
