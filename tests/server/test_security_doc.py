"""docs/operations/security.md stays true: its set-up example runs as written, in a shell."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tiercel.testing.services import free_port

DOC = Path(__file__).parents[2] / "docs/operations/security.md"


def test_the_setup_example_runs(tmp_path):
    script = re.search(r"<!-- test: run -->\n```sh\n(.*?)```", DOC.read_text(), re.S).group(1)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "TIERCEL_PASSWORD_HASH": "cheapest",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script + "\nwait\n"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert "401" in lines
    assert '"username":"ada"' in out.stdout and "company.team.hello" in out.stdout
    assert "editor   company.team" in out.stdout  # tokens list
    assert re.search(r"token:\w+\s+POST\s+200\s+/api/v1/flows", out.stdout)  # the audit log
