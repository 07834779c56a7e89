"""scripts/test and .ci/run, run in a copy of the repository layout with a recording venv.

The venv's python records the pip and pytest command lines instead of running them, so
these tests check what gets installed and run, and the exit status, in well under a second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "repo"
    for path in ("scripts/test", ".ci/run"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, root / path)
    (root / "pyproject.toml").write_text("[project]\nname = 'tiercel'\n")
    for name in ("tiercel-a", "tiercel-b"):
        (root / "plugins" / name / "tests").mkdir(parents=True)
        (root / "plugins" / name / "pyproject.toml").write_text(f"[project]\nname = '{name}'\n")
    (root / "plugins" / "half-written" / "tests").mkdir(parents=True)  # no pyproject.toml yet
    (root / "tests").mkdir()

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    record = tmp_path / "calls.log"
    python = venv / "bin" / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ]; then\n'
        f'    echo "$*" >>"{record}"\n'
        '    [ "$2" = pytest ] && exit "${FAKE_PYTEST_STATUS:-0}"\n'
        '    exit "${FAKE_PIP_STATUS:-0}"\n'
        "fi\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)
    return root, venv, record


def _run(layout, *args, script="scripts/test", **env):
    root, venv, record = layout
    environment = {
        **{k: v for k, v in os.environ.items() if k != "CI"},
        "TIERCEL_VENV": str(venv),
        # leave the machine's servers alone
        "TIERCEL_TEST_POSTGRES_URL": "postgresql://unused",
        "TIERCEL_TEST_REDIS_URL": "redis://unused",
        **env,
    }
    result = subprocess.run(
        [str(root / script), *args], cwd=root, env=environment, capture_output=True, text=True, timeout=60
    )
    calls = record.read_text().splitlines() if record.exists() else []
    return result, calls


def test_installs_everything_with_test_extras_then_runs_one_pytest(layout):
    result, calls = _run(layout, "-x")
    assert result.returncode == 0, result.stderr
    pip, pytest_call = calls
    assert pip.startswith("-m pip install --quiet")
    assert "-e .[test] -e plugins/tiercel-a[test] -e plugins/tiercel-b[test]" in pip
    assert pytest_call == "-m pytest -p no:cacheprovider tests plugins/tiercel-a/tests plugins/tiercel-b/tests -x"
    assert "plugins/half-written has tests but no pyproject.toml" in result.stderr


def test_install_is_skipped_until_a_pyproject_changes(layout):
    root, _venv, record = layout
    _run(layout)
    record.unlink()
    result, calls = _run(layout)
    assert [c.split()[1] for c in calls] == ["pytest"]
    assert "dependencies up to date" in result.stderr

    (root / "plugins" / "tiercel-a" / "pyproject.toml").write_text("[project]\nname = 'tiercel-a'\nversion = '2'\n")
    record.unlink()
    _result, calls = _run(layout)
    assert [c.split()[1] for c in calls] == ["pip", "pytest"]


def test_path_arguments_replace_the_default_directories(layout):
    _result, calls = _run(layout, "plugins/tiercel-b/tests::test_x", "-q")
    assert calls[-1] == "-m pytest -p no:cacheprovider plugins/tiercel-b/tests::test_x -q"


@pytest.mark.parametrize("status", ["1", "5"])
def test_pytest_failure_and_no_tests_collected_fail_the_command(layout, status):
    result, _calls = _run(layout, FAKE_PYTEST_STATUS=status)
    assert result.returncode == int(status)
    if status == "5":
        assert "collected no tests: treated as a failure" in result.stderr


def test_a_failed_install_stops_before_pytest_and_is_retried_next_time(layout):
    result, calls = _run(layout, FAKE_PIP_STATUS="1")
    assert result.returncode == 2
    assert "pip install failed" in result.stderr
    assert "plugins/tiercel-a cannot be installed" in result.stderr  # each project tried alone
    assert "pytest" not in {c.split()[1] for c in calls}
    record = layout[2]
    record.unlink()
    _result, calls = _run(layout)
    assert [c.split()[1] for c in calls] == ["pip", "pytest"]


def test_ci_run_sets_ci_and_fails_with_the_tests(layout):
    result, calls = _run(layout, script=".ci/run", FAKE_PYTEST_STATUS="1")
    assert result.returncode == 1
    assert "(CI=true)" in result.stderr
    assert calls[-1].startswith("-m pytest")
