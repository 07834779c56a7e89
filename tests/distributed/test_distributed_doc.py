"""docs/operations/distributed.md stays true: its cluster example runs as written, in a shell."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tiercel.testing.services import free_port

DOC = Path(__file__).parents[2] / "docs/operations/distributed.md"


@pytest.mark.timeout(120)
def test_the_cluster_example_runs(tmp_path):
    script = re.search(r"<!-- test: run -->\n```sh\n(.*?)```", DOC.read_text(), re.S).group(1)
    env = {**os.environ, "PORT": str(free_port()),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS 42" in out.stdout.splitlines()
    assert re.search(r"^worker .* [0-4]/4 +default$", out.stdout, re.M), out.stdout
    assert re.search(r"^worker .* [0-2]/2 +heavy$", out.stdout, re.M), out.stdout
    assert re.search(r"^heavy +0 +0 +- +1$", out.stdout, re.M), out.stdout
