"""The process runner for real: exit codes, env, files both ways, streaming, timeout, kill, no orphans."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from pathlib import Path

import pytest

from tiercel.api import ScriptJob, TaskError
from tiercel.core._process import ProcessTimeout
from tiercel.core.runner import Process

PY = sys.executable


def run(ctx, job: ScriptJob):
    return asyncio.run(Process().run(ctx, job))


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def marker() -> str:
    """A sleep duration no other process uses, to find the process in /proc."""
    return f"{random.randint(500, 900)}.{random.randint(100000, 999999)}"


def living(mark: str) -> list[int]:
    """Pids of non-zombie processes whose command line holds *mark*."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if mark in cmd and stat[stat.rfind(")") + 2] not in "ZX":
            found.append(int(entry.name))
    return found


def wait_gone(mark: str, within: float = 3.0) -> list[int]:
    end = time.monotonic() + within
    while (pids := living(mark)) and time.monotonic() < end:
        time.sleep(0.02)
    return pids


def test_exit_codes_and_fail_fast(ctx):
    assert run(ctx, ScriptJob([["true"]])).exit_code == 0
    assert run(ctx, ScriptJob([sh("exit 3")])).exit_code == 3
    seen = []
    result = run(ctx, ScriptJob([sh("echo one"), sh("exit 5"), sh("echo three")], on_stdout=seen.append))
    assert (result.exit_code, seen) == (5, ["one"])
    seen.clear()
    result = run(ctx, ScriptJob([sh("exit 5"), sh("echo two; exit 0")], on_stdout=seen.append, fail_fast=False))
    assert (result.exit_code, seen) == (5, ["two"])  # the first failure is not hidden by later success


def test_missing_command_and_empty_command(ctx):
    with pytest.raises(TaskError, match="command not found: `no-such-command-xyz`"):
        run(ctx, ScriptJob([["no-such-command-xyz"]]))
    with pytest.raises(TaskError, match="empty command"):
        run(ctx, ScriptJob([[]]))


def test_env_working_dir_and_output_dir(ctx, monkeypatch):
    monkeypatch.setenv("FROM_WORKER", "inherited")
    lines = []
    job = ScriptJob([sh('echo "$FROM_WORKER $MY_VAR"; pwd; echo "$WORKING_DIR"; test -d "$OUTPUT_DIR" && echo outdir')],
                    env={"MY_VAR": "set by job"}, on_stdout=lines.append)
    assert run(ctx, job).exit_code == 0
    work = str(ctx.working_dir)
    assert lines == ["inherited set by job", os.path.realpath(work), work, "outdir"]


def test_input_files_bytes_text_paths_and_subdirectories(ctx, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(100_000))
    job = ScriptJob([sh("cat a.txt sub/dir/b.txt; cmp copied.bin " + str(source) + " && echo same")],
                    input_files={"a.txt": b"alpha\n", "sub/dir/b.txt": "beta\n", "copied.bin": source})
    lines = []
    job.on_stdout = lines.append
    assert run(ctx, job).exit_code == 0
    assert lines == ["alpha", "beta", "same"]


@pytest.mark.parametrize("name", ["/etc/evil", "../evil", "sub/../../evil", ""])
def test_input_file_names_that_escape_are_refused(ctx, name):
    with pytest.raises(TaskError, match="relative path inside the working directory"):
        run(ctx, ScriptJob([["true"]], input_files={name: b"x"}))
    assert not (ctx.working_dir.parent / "evil").exists()


def test_input_file_through_a_symlink_is_refused(ctx, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (ctx.working_dir / "link").symlink_to(outside)
    with pytest.raises(TaskError, match="escapes the working directory"):
        run(ctx, ScriptJob([["true"]], input_files={"link/evil": b"x"}))
    assert not (outside / "evil").exists()


def test_output_files_by_glob_and_from_output_dir(ctx):
    script = ("echo r > report.txt; mkdir -p data/deep; echo 1 > data/a.csv; echo 2 > data/deep/b.csv; echo n > notes.md; "
              'echo o > "$OUTPUT_DIR/out.json"; mkdir "$OUTPUT_DIR/sub"; echo s > "$OUTPUT_DIR/sub/s.txt"')
    result = run(ctx, ScriptJob([sh(script)], output_files=["*.txt", "data/**/*.csv"]))
    assert sorted(result.output_files) == ["data/a.csv", "data/deep/b.csv", "out.json", "report.txt", "sub/s.txt"]
    assert result.output_files["out.json"].read_text() == "o\n"
    assert result.output_files["data/deep/b.csv"].read_text() == "2\n"


def test_output_files_are_collected_after_a_failure(ctx):
    result = run(ctx, ScriptJob([sh("echo partial > log.txt; exit 2")], output_files=["log.txt"]))
    assert result.exit_code == 2 and list(result.output_files) == ["log.txt"]


def test_output_glob_escaping_is_refused(ctx):
    with pytest.raises(TaskError, match="output file pattern `../\\*`"):
        run(ctx, ScriptJob([["true"]], output_files=["../*"]))


def test_output_is_streamed_line_by_line_as_it_comes(ctx):
    """The command waits for a file that the test creates on seeing the first line: only streaming lets it finish."""
    go = ctx.working_dir / "go"
    out, err = [], []

    def on_stdout(line):
        out.append(line)
        if line == "ready":
            go.touch()

    script = "echo ready; while [ ! -e go ]; do sleep 0.01; done; echo after; echo oops >&2; printf 'no newline'"
    result = run(ctx, ScriptJob([sh(script)], on_stdout=on_stdout, on_stderr=err.append, timeout=10))
    assert result.exit_code == 0
    assert out == ["ready", "after", "no newline"] and err == ["oops"]


def test_order_within_a_stream_and_across_commands(ctx):
    lines = []
    job = ScriptJob([[PY, "-c", "import sys\nfor i in range(2000): print(i)"], sh("echo last")], on_stdout=lines.append)
    run(ctx, job)
    assert lines == [str(i) for i in range(2000)] + ["last"]


def test_long_lines_and_invalid_utf8_do_not_break_streaming(ctx):
    lines = []
    code = "import sys; sys.stdout.buffer.write(b'x' * 300000 + b'\\n' + b'bad \\xff byte\\r\\n')"
    run(ctx, ScriptJob([[PY, "-c", code]], on_stdout=lines.append))
    assert lines == ["x" * 300000, "bad \ufffd byte"]


def test_stderr_tail_keeps_the_last_lines(ctx):
    result = run(ctx, ScriptJob([[PY, "-c", "import sys\nfor i in range(100): print('e', i, file=sys.stderr)\nsys.exit(1)"]]))
    assert result.exit_code == 1
    assert result.stderr_tail.splitlines() == [f"e {i}" for i in range(80, 100)]


def test_a_failing_callback_fails_the_run_without_blocking_the_command(ctx):
    def boom(line):
        raise ValueError("callback broke")

    with pytest.raises(ValueError, match="callback broke"):
        run(ctx, ScriptJob([[PY, "-c", "print('x\\n' * 200000)"]], on_stdout=boom, timeout=20))


def test_timeout_kills_the_whole_group(ctx):
    mark = marker()
    start = time.monotonic()
    with pytest.raises(ProcessTimeout, match="timed out after 0.5 s") as exc:
        run(ctx, ScriptJob([sh(f"sleep {mark} & sleep {mark}; wait")], timeout=0.5))
    assert isinstance(exc.value, TaskError) and isinstance(exc.value, asyncio.TimeoutError)
    assert time.monotonic() - start < 4
    assert wait_gone(mark) == []


def test_timeout_also_kills_a_process_ignoring_sigterm(ctx):
    mark = marker()
    script = f"trap '' TERM; sleep {mark} & while true; do sleep 0.05; done"
    with pytest.raises(ProcessTimeout):
        run(ctx, ScriptJob([sh(script)], timeout=0.3))
    assert wait_gone(mark) == []


def test_timeout_spans_all_commands(ctx):
    start = time.monotonic()
    with pytest.raises(ProcessTimeout):
        run(ctx, ScriptJob([sh("sleep 0.3"), sh("sleep 0.3"), sh("sleep 5")], timeout=0.8))
    assert time.monotonic() - start < 3


def test_cancellation_kills_the_whole_group(ctx):
    mark = marker()
    started = ctx.working_dir / "started"

    async def main():
        job = ScriptJob([sh(f"sleep {mark} & touch started; sleep {mark}")])
        task = asyncio.ensure_future(Process().run(ctx, job))
        while not started.exists():
            await asyncio.sleep(0.01)
        assert living(mark)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert wait_gone(mark) == []


def test_background_children_do_not_outlive_a_finished_command(ctx):
    """A command that returns while its background child still holds the output pipe."""
    mark = marker()
    lines = []
    start = time.monotonic()
    result = run(ctx, ScriptJob([sh(f"sleep {mark} & echo started")], on_stdout=lines.append))
    assert result.exit_code == 0 and lines == ["started"]
    assert time.monotonic() - start < 4
    assert wait_gone(mark) == []


def test_cancellation_at_any_moment_of_start_up_leaves_nothing(ctx):
    mark = marker()

    async def main():
        for delay in (0, 0.001, 0.003, 0.01, 0.03):
            task = asyncio.ensure_future(Process().run(ctx, ScriptJob([sh(f"sleep {mark} & sleep {mark}")])))
            await asyncio.sleep(delay)
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=5)
            assert done, f"cancellation after {delay} s did not finish"

    asyncio.run(main())
    assert wait_gone(mark) == []


CRASH_FLOW = """\
id: crash
namespace: test.process
tasks:
  - id: hold
    type: scripts.Shell
    commands:
      - if [ {{ taskrun.attemptsCount }} -eq 0 ]; then sleep 302 & echo $! > "$MARKER"; wait; fi
      - echo done
"""


def _tracked(home: Path) -> bool:
    import sqlite3

    try:
        rows = sqlite3.connect(home / "tiercel.db").execute("SELECT resources FROM attempts").fetchall()
    except sqlite3.Error:
        return False
    return any("process.group" in str(row[0]) for row in rows)


def test_resumed_attempt_kills_the_process_group_a_killed_worker_left(tmp_path):
    """`tiercel run` SIGKILLed mid-task leaves its shell's children running (nothing signals them);
    `executions resume` kills that tracked process group before the new attempt starts."""
    import json
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from tiercel.testing import task_run, tiercel

    flow = tmp_path / "crash.yaml"
    flow.write_text(CRASH_FLOW)
    home, marker = tmp_path / "home", tmp_path / "sleep.pid"
    env = {"MARKER": str(marker)}
    worker = subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", "run", str(flow), "--json"],
                              env={**os.environ, **env, "TIERCEL_HOME": str(home)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (marker.exists() and marker.read_text().strip() and _tracked(home)):
            assert worker.poll() is None and time.monotonic() < deadline, "the command never started (or was not tracked)"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
    sleeper = int(marker.read_text())
    assert Path(f"/proc/{sleeper}").exists(), "the background child died with the worker"
    execution_id = sqlite3.connect(home / "tiercel.db").execute("SELECT id FROM executions").fetchone()[0]
    resumed = tiercel("executions", "resume", execution_id, "--json", home=home, env=env)
    execution = json.loads(resumed.stdout)
    assert execution["state"] == "SUCCESS", resumed.stderr
    assert len(task_run(execution, "hold")["attempts"]) == 2
    for _ in range(100):
        stat = Path(f"/proc/{sleeper}/stat")
        if not stat.exists() or stat.read_text().split(")")[1].split()[0] == "Z":
            return
        time.sleep(0.05)
    raise AssertionError(f"the dead worker's background child (pid {sleeper}) still runs")
