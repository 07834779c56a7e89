"""A worker SIGKILLed mid-task leaves its container running; the resumed attempt removes it first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker

from tiercel.testing import task_run, tiercel

FLOW = """\
id: crash
namespace: test.docker
inputs:
  - {id: host, type: STRING}
tasks:
  - id: hold
    type: scripts.Shell
    containerImage: tiercel/busybox:test
    taskRunner: {type: docker.Docker, host: "{{ inputs.host }}", networkMode: none}
    commands:
      - if [ {{ taskrun.attemptsCount }} -eq 0 ]; then echo started; sleep 300; fi
      - echo done
"""


def test_resumed_attempt_removes_the_container_a_killed_worker_left(docker_host: str, tmp_path: Path) -> None:
    client = docker.DockerClient(base_url=docker_host)
    flow = tmp_path / "crash.yaml"
    flow.write_text(FLOW)
    home = tmp_path / "home"
    env = {**os.environ, "TIERCEL_HOME": str(home)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tiercel.cli.main", "run", str(flow), "-i", f"host={docker_host}", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    selector = {"label": "tiercel.flow=crash"}
    before = {c.id for c in client.containers.list(all=True, filters=selector)}
    try:
        deadline = time.monotonic() + 60
        while not (running := [c for c in client.containers.list(filters=selector) if c.id not in before]):
            assert worker.poll() is None and time.monotonic() < deadline, "the task's container never started"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    orphan = running[0]
    assert client.containers.get(orphan.id).status == "running"  # the dead worker's container outlived it
    resumed = tiercel("executions", "resume", orphan.labels["tiercel.execution"], "--json", home=home)
    execution = json.loads(resumed.stdout)
    assert execution["state"] == "SUCCESS", resumed.stderr
    assert len(task_run(execution, "hold")["attempts"]) == 2
    this_run = {"label": f"tiercel.execution={orphan.labels['tiercel.execution']}"}  # not an earlier run's
    assert not client.containers.list(all=True, filters=this_run), "a container of the execution is left"
