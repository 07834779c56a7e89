"""How ``core.Process`` runs a job: subprocesses in their own process groups, streamed output.

A process group is what makes killing reliable: a timeout, a cancellation or simply the
end of a command signals the whole group, so shells' background children die too.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tiercel.api import ScriptJob, ScriptResult, TaskError
from tiercel.runners import MAX_LINE, OUTPUT_DIR_NAME, write_inputs

#: Seconds between SIGTERM and SIGKILL when stopping a process group.
KILL_GRACE = 2.0
#: Seconds to let the output pipes drain once a command's group is gone.
DRAIN_TIMEOUT = 2.0
#: Lines of stderr kept for ScriptResult.stderr_tail.
TAIL_LINES = 20


class ProcessTimeout(TaskError, TimeoutError):
    """The commands ran past the job's timeout (their process group was killed)."""


#: Key under which the running command's process group is tracked with the attempt.
TRACK_KEY = "process.group"
Track = Callable[[dict[str, int] | None], None]


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), to tell it from a later one with its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[19])


def kill_leftovers(leftovers: list[dict[str, object]]) -> list[int]:
    """SIGKILL the process groups earlier attempts tracked and never forgot (their worker died),
    when their leader is still the same process; return the groups killed."""
    killed = []
    for left in leftovers:
        group = left.get(TRACK_KEY)
        if not isinstance(group, dict) or not isinstance(group.get("pgid"), int):
            continue
        pgid = group["pgid"]
        # the leader is the tracked process (or gone, its children left): not a later process with its pid
        if _start_time(pgid) in (group.get("start"), None) and _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
            killed.append(pgid)
    return killed


async def run_job(work: Path, job: ScriptJob, track: Track | None = None) -> ScriptResult:
    """Run *job* in the directory *work*: write inputs, run the commands, collect outputs."""
    work.mkdir(parents=True, exist_ok=True)
    out_dir = work / OUTPUT_DIR_NAME
    out_dir.mkdir(exist_ok=True)
    write_inputs(work, job.input_files)
    env = {
        **os.environ,
        **{k: str(v) for k, v in job.env.items()},
        "WORKING_DIR": str(work),
        "OUTPUT_DIR": str(out_dir),
    }
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    loop = asyncio.get_running_loop()
    deadline = None if job.timeout is None else loop.time() + job.timeout
    exit_code = 0
    for argv in job.commands:
        code = await _run_command(argv, work, env, job, tail, deadline, track)
        if code != 0:
            exit_code = exit_code or code
            if job.fail_fast:
                break
    return ScriptResult(exit_code, _collect(work, out_dir, job.output_files), "\n".join(tail))


def _inside(root: Path, name: str, what: str) -> Path:
    """``root / name`` after checking that *name* is relative and stays inside *root*."""
    rel = PurePosixPath(name.replace("\\", "/"))
    if not name or rel.is_absolute() or ".." in rel.parts:
        raise TaskError(
            f"{what} `{name}` must be a relative path inside the working directory (no leading `/`, no `..`)"
        )
    path = root / rel
    if not path.resolve().is_relative_to(root.resolve()):
        raise TaskError(f"{what} `{name}` escapes the working directory")
    return path


def _collect(work: Path, out_dir: Path, globs: list[str]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for pattern in globs:
        _inside(work, pattern, "output file pattern")
        for path in sorted(work.glob(pattern)):
            if path.is_file() and not path.is_relative_to(out_dir):
                files[path.relative_to(work).as_posix()] = path
    for path in sorted(out_dir.rglob("*")):
        if path.is_file():
            files.setdefault(path.relative_to(out_dir).as_posix(), path)
    return files


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Stream protocol that also reports the moment the process exits.

    ``Process.wait()`` (Python 3.11) only returns once the output pipes are closed too,
    which a background child may keep open forever; this future does not wait for them.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=1 << 16, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


async def _run_command(
    argv: list[str],
    work: Path,
    env: dict[str, str],
    job: ScriptJob,
    tail: deque[str],
    deadline: float | None,
    track: Track | None = None,
) -> int:
    if not argv:
        raise TaskError("empty command: each command is a non-empty list of arguments")
    loop = asyncio.get_running_loop()
    # Shielded: a cancellation during start-up makes asyncio kill only the leader and then wait
    # for pipes that its children may hold forever; finish starting, then stop the whole group.
    start = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: _Protocol(loop),
            *argv,
            cwd=work,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    )
    try:
        transport, protocol = await asyncio.shield(start)
    except FileNotFoundError:
        raise TaskError(f"command not found: `{argv[0]}` (is it installed and on PATH?)") from None
    except PermissionError:
        raise TaskError(f"permission denied running `{argv[0]}` (is it executable?)") from None
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            transport, protocol = await start
            await _stop_group(transport.get_pid(), protocol)
            transport.close()
        raise
    proc = asyncio.subprocess.Process(transport, protocol, loop)
    if track is not None:  # persisted at once: if the worker dies now, the next attempt kills this group
        track({"pgid": proc.pid, "start": _start_time(proc.pid) or 0})

    def on_stderr(line: str) -> None:
        tail.append(line)
        if job.on_stderr:
            job.on_stderr(line)

    pumps = [asyncio.create_task(_pump(proc.stdout, job.on_stdout)), asyncio.create_task(_pump(proc.stderr, on_stderr))]
    try:
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        await asyncio.wait([protocol.exited], timeout=remaining)
        if not protocol.exited.done():
            await _stop_group(proc.pid, protocol)
            raise ProcessTimeout(f"timed out after {job.timeout:g} s; the command and its children were killed")
        await _stop_group(proc.pid, protocol)  # background children the command left behind
        await asyncio.wait(pumps, timeout=DRAIN_TIMEOUT)
        for pump in pumps:
            if pump.done() and pump.result() is not None:
                raise pump.result()  # an output callback failed
        return transport.get_returncode()
    except BaseException:
        await asyncio.shield(_stop_group(proc.pid, protocol))
        raise
    finally:
        for pump in pumps:
            pump.cancel()
        transport.close()


async def _pump(stream: asyncio.StreamReader | None, callback: Callable[[str], None] | None) -> BaseException | None:
    """Pass each line of *stream* to *callback* as soon as it is complete.

    Reads to the end even when the callback fails (a full pipe would block the command);
    returns the callback's first error.
    """
    if stream is None:
        return None
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    error: BaseException | None = None

    def emit(line: str) -> None:
        nonlocal error, callback
        if callback is None:
            return
        try:
            callback(line.removesuffix("\r"))
        except Exception as exc:
            error, callback = exc, None

    while chunk := await stream.read(65536):
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        if len(pending) > MAX_LINE:
            lines.append(pending)
            pending = ""
        for line in lines:
            emit(line)
    pending += decoder.decode(b"", final=True)
    if pending:
        emit(pending)
    return error


def _group_alive(pgid: int) -> bool:
    """Whether a process of group *pgid* still runs (zombies waiting for a reaper do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


async def _stop_group(pgid: int, protocol: _Protocol) -> None:
    """SIGTERM the command's process group, then SIGKILL what is left after KILL_GRACE."""
    if protocol.exited.done() and not _group_alive(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    end = time.monotonic() + KILL_GRACE
    await asyncio.wait([protocol.exited], timeout=KILL_GRACE)
    while _group_alive(pgid) and time.monotonic() < end:
        await asyncio.sleep(0.02)
    if _group_alive(pgid) or not protocol.exited.done():
        _signal_group(pgid, signal.SIGKILL)
        await asyncio.wait([protocol.exited], timeout=KILL_GRACE)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
