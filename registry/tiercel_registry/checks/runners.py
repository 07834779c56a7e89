"""Runner checks: exit codes, env, files both ways, streamed logs, timeout and kill with no orphan."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tiercel_registry._engine import registry_for, run_context, run_loop
from tiercel_registry.checks import STOP_GRACE, CheckFailed, CheckSkipped, Options


def _runner(cls: type, options: Options) -> Any:
    from pydantic import ValidationError

    try:
        return cls.model_validate(options.properties)
    except ValidationError as exc:
        raise CheckSkipped(f"cannot build the runner from `properties` {options.properties!r}: give the conformance "
                           f"class a `properties` fixture ({exc.error_count()} errors)") from None


def _run_job(cls: type, options: Options, body: Callable[..., Any]) -> None:
    runner = _runner(cls, options)
    with run_context(registry_for(cls)) as ctx:
        try:
            run_loop(asyncio.wait_for(body(runner, ctx), 120))
        except TimeoutError:
            raise CheckFailed(f"{cls.type}: the job did not end within 120 s") from None


def _job(commands: list[str], **kw: Any) -> Any:
    from tiercel.api import ScriptJob

    return ScriptJob(commands=[["sh", "-c", c] for c in commands], **kw)


def check_exit_code(cls: type, options: Options) -> None:
    async def body(runner: Any, ctx: Any) -> None:
        codes = [(await runner.run(ctx, _job([c]))).exit_code for c in ("exit 0", "exit 3")]
        if codes != [0, 3]:
            raise CheckFailed(f"{cls.type}: commands exiting 0 and 3 reported exit codes {codes}")

    _run_job(cls, options, body)


def check_env(cls: type, options: Options) -> None:
    lines: list[str] = []

    async def body(runner: Any, ctx: Any) -> None:
        await runner.run(ctx, _job(['printf "%s\\n" "$TIERCEL_PROBE"'], env={"TIERCEL_PROBE": "a value, with spaces"},
                                   on_stdout=lines.append))
        if "a value, with spaces" not in lines:
            raise CheckFailed(f"{cls.type}: env TIERCEL_PROBE did not reach the command (it printed {lines!r})")

    _run_job(cls, options, body)


def check_files(cls: type, options: Options) -> None:
    binary = bytes(range(256)) * 4

    async def body(runner: Any, ctx: Any) -> None:
        job = _job(["cat in.txt > out.txt && mkdir -p res && cp sub/data.bin res/copy.bin"],
                   input_files={"in.txt": b"hello\n", "sub/data.bin": binary}, output_files=["out.txt", "res/*.bin"])
        result = await runner.run(ctx, job)
        if result.exit_code != 0:
            raise CheckFailed(f"{cls.type}: input files did not reach the command (exit {result.exit_code}: "
                              f"{result.stderr_tail.strip()}); write job.input_files into the working directory")
        got = {name: Path(path).read_bytes() for name, path in result.output_files.items()}
        want = {"out.txt": b"hello\n", "res/copy.bin": binary}
        missing = sorted(name for name in want if got.get(name) != want[name])
        if missing:
            raise CheckFailed(f"{cls.type}: output files {missing} did not come back intact (got {sorted(got)}); "
                              f"return the files matching job.output_files, keyed by relative path")

    _run_job(cls, options, body)


class _Lines:
    """A line callback (safe from any thread) whose lines can be awaited."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.seen: dict[str, asyncio.Event] = {}

    def _event(self, line: str) -> asyncio.Event:
        return self.seen.setdefault(line, asyncio.Event())

    def __call__(self, line: str) -> None:
        self.loop.call_soon_threadsafe(lambda: self._event(line.strip()).set())

    async def wait(self, line: str, timeout: float = 10) -> bool:
        try:
            await asyncio.wait_for(self._event(line).wait(), timeout)
            return True
        except TimeoutError:
            return False


def check_log_streaming(cls: type, options: Options) -> None:
    async def body(runner: Any, ctx: Any) -> None:
        loop = asyncio.get_running_loop()
        out, err = _Lines(loop), _Lines(loop)
        job = _job(["echo first; echo oops >&2; sleep 300; echo second"], on_stdout=out, on_stderr=err)
        task = asyncio.create_task(runner.run(ctx, job))
        try:
            if not await out.wait("first"):
                raise CheckFailed(f"{cls.type}: a line printed on stdout did not reach job.on_stdout while the command "
                                  f"ran; stream output line by line as it comes, not at the end")
            if not await err.wait("oops"):
                raise CheckFailed(f"{cls.type}: a line printed on stderr did not reach job.on_stderr while the command ran")
        finally:
            task.cancel()
            await asyncio.wait([task], timeout=STOP_GRACE + 5)

    _run_job(cls, options, body)


_ORPHAN = "sleep 300 & echo $!; wait"


async def _child_gone(cls: type, options: Options, pid: int, what: str) -> None:
    for _ in range(100):
        if not options.alive(pid):
            return
        await asyncio.sleep(0.05)
    raise CheckFailed(f"{cls.type}: a background child (pid {pid}) outlived {what}: kill the commands' whole process "
                      f"group (start_new_session=True, then os.killpg)")


def check_timeout(cls: type, options: Options) -> None:
    async def body(runner: Any, ctx: Any) -> None:
        pids: list[int] = []
        job = _job([_ORPHAN], timeout=0.5, on_stdout=lambda line: pids.append(int(line)) if line.strip().isdigit() else None)
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(runner.run(ctx, job), 20)
        except TimeoutError as exc:
            if time.monotonic() - started >= 19:
                raise CheckFailed(f"{cls.type}: job.timeout=0.5 s did not stop a 300 s command within 20 s") from exc
        except Exception:
            pass  # a timeout reported as an error (TaskError) is right
        else:
            if result.exit_code == 0:
                raise CheckFailed(f"{cls.type}: a command cut by job.timeout reported exit code 0; raise a TaskError "
                                  f"(or report a non-zero exit code)")
        for pid in pids:
            await _child_gone(cls, options, pid, "the timeout")

    _run_job(cls, options, body)


def check_kill(cls: type, options: Options) -> None:
    async def body(runner: Any, ctx: Any) -> None:
        loop = asyncio.get_running_loop()
        pids: list[int] = []
        got_pid = asyncio.Event()

        def on_stdout(line: str) -> None:
            if line.strip().isdigit():
                pids.append(int(line))
                loop.call_soon_threadsafe(got_pid.set)

        task = asyncio.create_task(runner.run(ctx, _job([_ORPHAN], on_stdout=on_stdout)))
        with contextlib.suppress(TimeoutError):  # without streamed output, kill blind (log_streaming says why)
            await asyncio.wait_for(got_pid.wait(), 5)
        if task.done():
            raise CheckFailed(f"{cls.type}: a 300 s command ended at once ({task.result() if not task.exception() else task.exception()!r})")
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=STOP_GRACE + 5)
        if not done:
            raise CheckFailed(f"{cls.type}: run() did not return within {STOP_GRACE + 5:g} s of being cancelled")
        for pid in pids:
            await _child_gone(cls, options, pid, "the kill")

    _run_job(cls, options, body)
