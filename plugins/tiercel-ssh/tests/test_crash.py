"""A worker SIGKILLed mid-task leaves its remote commands running; the resumed attempt kills them first."""

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
namespace: test.ssh
inputs:
  - {id: port, type: INT}
  - {id: known, type: STRING}
tasks:
  - id: hold
    type: scripts.Shell
    taskRunner: {type: ssh.SSH, host: 127.0.0.1, port: "{{ inputs.port }}", username: tiercel-test,
                 privateKey: "{{ secret('CRASH_KEY') }}", knownHosts: "{{ inputs.known }}"}
    commands:
      - if [ {{ taskrun.attemptsCount }} -eq 0 ]; then sleep 301 & wait; fi
      - echo done
"""


def _remote_sleeps() -> list[str]:
    found = subprocess.run(["pgrep", "-u", "tiercel-test", "-f", "sleep 301"], capture_output=True, text=True)
    return found.stdout.split()


def _tracked(home: Path) -> str:
    import sqlite3

    try:
        rows = sqlite3.connect(home / "tiercel.db").execute("SELECT resources FROM attempts").fetchall()
    except sqlite3.Error:
        return ""
    return " ".join(str(row[0]) for row in rows)


def test_resumed_attempt_kills_what_a_killed_worker_left(ssh_server, tmp_path: Path) -> None:
    flow = tmp_path / "crash.yaml"
    flow.write_text(FLOW)
    home = tmp_path / "home"
    env = {"TIERCEL_SECRET_CRASH_KEY": ssh_server.private_key}
    args = ["-i", f"port={ssh_server.port}", "-i", f"known={ssh_server.known_hosts.strip()}", "--json"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "tiercel.cli.main", "run", str(flow), *args],
        env={**os.environ, **env, "TIERCEL_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not _remote_sleeps():
            assert worker.poll() is None and time.monotonic() < deadline, "the remote command never started"
            time.sleep(0.05)
        while '"pgid"' not in _tracked(home):  # until the attempt recorded the remote process group
            assert worker.poll() is None and time.monotonic() < deadline, "the process group was never tracked"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    assert _remote_sleeps(), "the remote command died with the worker (nothing to clean up)"
    import sqlite3

    execution_id = sqlite3.connect(home / "tiercel.db").execute("SELECT id FROM executions").fetchone()[0]
    resumed = tiercel("executions", "resume", execution_id, "--json", home=home, env=env)
    execution = json.loads(resumed.stdout)
    assert execution["state"] == "SUCCESS", resumed.stderr
    assert len(task_run(execution, "hold")["attempts"]) == 2
    assert not _remote_sleeps(), "the dead worker's remote command still runs"
