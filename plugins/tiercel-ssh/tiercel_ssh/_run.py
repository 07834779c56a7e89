"""How ``ssh.SSH`` runs a job: one remote shell per attempt, in its own process group.

OpenSSH's sshd makes each session's command a session (and process group) leader, so the
commands and every background child share one process group id, which the remote shell prints
first (on stderr, behind a per-attempt token). A timeout, a kill or simply the end of the
commands signals that group from a second channel. Connections are reused per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shlex
import stat
from collections import deque
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from tiercel import RunContext, ScriptJob, ScriptResult, TaskError
from tiercel.runners import OUTPUT_DIR_NAME, LineSplitter, check_relative, output_name, shell_script

if TYPE_CHECKING:
    import asyncssh

    from tiercel_ssh.runner import SSH

#: Key under which the remote process group and directory are tracked with the attempt.
TRACK_KEY = "ssh.process"
TAIL_LINES = 20


class SSHTimeout(TaskError, TimeoutError):
    """The commands ran past the job's timeout (their remote process group was killed)."""


_POOL: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, asyncssh.SSHClientConnection]] = {}


def _where(runner: SSH) -> str:
    return f"{runner.username}@{runner.host}:{runner.port}"


async def connect(runner: SSH) -> asyncssh.SSHClientConnection:
    """A connection for *runner*, reused while open on this event loop; a clear TaskError when
    the host cannot be reached or refuses the login."""
    import asyncssh

    loop = asyncio.get_running_loop()
    key = (
        id(loop),
        runner.host,
        runner.port,
        runner.username,
        runner.password,
        runner.privateKey,
        runner.knownHosts,
        runner.strictHostKeyChecking,
    )
    for k, (owner, _conn) in list(_POOL.items()):
        if owner.is_closed():
            del _POOL[k]
    cached = _POOL.get(key)
    if cached and not cached[1].is_closed():
        return cached[1]
    options: dict[str, Any] = {
        "username": runner.username,
        "port": runner.port,
        "connect_timeout": runner.connectTimeout.total_seconds(),
        "agent_path": None,
    }
    if runner.privateKey:
        try:
            options["client_keys"] = [asyncssh.import_private_key(runner.privateKey, runner.privateKeyPassphrase)]
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise TaskError(
                f"ssh.SSH: `privateKey` cannot be read ({exc}): give the PEM/OpenSSH text of the key "
                f"(and `privateKeyPassphrase` if it is encrypted)"
            ) from None
    else:
        options["client_keys"] = None
    if runner.password:
        options["password"] = runner.password
    if not runner.strictHostKeyChecking:
        options["known_hosts"] = None
    elif runner.knownHosts:
        options["known_hosts"] = asyncssh.import_known_hosts(runner.knownHosts)
    try:
        conn = await asyncssh.connect(runner.host, **options)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise TaskError(
            f"ssh.SSH: the host key of {_where(runner)} is not trusted ({exc}); add its line to "
            f"`knownHosts` (ssh-keyscan -p {runner.port} {runner.host})"
        ) from None
    except asyncssh.PermissionDenied:
        raise TaskError(
            f"ssh.SSH: {_where(runner)} refused the login; check `username` and `privateKey`/`password`"
        ) from None
    except (OSError, asyncssh.Error, TimeoutError) as exc:
        raise TaskError(
            f"ssh.SSH: cannot connect to {_where(runner)} ({exc or type(exc).__name__}); check `host` and "
            f"`port`, and that sshd runs there and the worker can reach it"
        ) from None
    _POOL[key] = (loop, conn)
    return conn


def _stop_group_command(pgid: int, grace: float) -> str:
    """SIGTERM to the process group, SIGKILL once *grace* seconds passed with some of it left."""
    tries = max(1, int(grace * 10))
    return (
        f"(kill -TERM -{pgid} 2>/dev/null || exit 0; i=0; "
        f"while kill -0 -{pgid} 2>/dev/null && [ $i -lt {tries} ]; do sleep 0.1; i=$((i+1)); done; "
        f"kill -KILL -{pgid} 2>/dev/null; exit 0)"
    )


async def _clean_leftovers(conn: asyncssh.SSHClientConnection, runner: SSH, ctx: RunContext) -> None:
    """Kill what an earlier attempt left on this host (its worker died) and remove its directory."""
    for left in ctx.leftovers:
        info = left.get(TRACK_KEY)
        if not isinstance(info, dict) or (info.get("host"), info.get("port")) != (runner.host, runner.port):
            continue
        parts = []
        if isinstance(info.get("pgid"), int):
            parts.append(_stop_group_command(info["pgid"], 0))
        if isinstance(info.get("dir"), str):
            parts.append(f"rm -rf {shlex.quote(info['dir'])}")
        await conn.run("; ".join(parts))
        ctx.logger.warning(
            "stopped what an earlier attempt left on %s (process group %s)", runner.host, info.get("pgid")
        )


async def run_job(runner: SSH, ctx: RunContext, job: ScriptJob) -> ScriptResult:
    import asyncssh

    conn = await connect(runner)
    await _clean_leftovers(conn, runner, ctx)
    token = secrets.token_hex(8)
    workdir = f"{runner.remoteDir.rstrip('/')}/tiercel-{token}"
    grace = runner.killGracePeriod.total_seconds()
    tracked: dict[str, Any] = {"host": runner.host, "port": runner.port, "dir": workdir}
    ctx.track(TRACK_KEY, dict(tracked))
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        if job.input_files:
            await _upload(conn, workdir, job.input_files)
        env = {
            **{k: str(v) for k, v in job.env.items()},
            "WORKING_DIR": workdir,
            "OUTPUT_DIR": f"{workdir}/{OUTPUT_DIR_NAME}",
        }
        exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items() if name.isidentifier())
        command = (
            f"mkdir -p -m 700 {shlex.quote(workdir)} && mkdir -p {shlex.quote(workdir + '/' + OUTPUT_DIR_NAME)} && "
            f'cd {shlex.quote(workdir)} || exit 125\necho "{token} $$" >&2\n{exports}'
            f"{shell_script(job.commands, job.fail_fast)}"
        )
        try:
            code = await _run(conn, command, token, tracked, tail, ctx, job, grace)
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError, ConnectionError) as exc:
            raise TaskError(
                f"ssh.SSH: the connection to {_where(runner)} dropped mid-run ({exc}); the attempt failed "
                f"and may be retried (`retry`)"
            ) from None
        outputs = await _download(conn, workdir, ctx, job.output_files)
        return ScriptResult(code, outputs, "\n".join(tail))
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(_cleanup(runner, conn, tracked, grace))
            ctx.track(TRACK_KEY, None)


async def _cleanup(runner: SSH, conn: asyncssh.SSHClientConnection, tracked: dict[str, Any], grace: float) -> None:
    """Stop the process group and remove the directory; over a new connection when the run's dropped."""
    if conn.is_closed():
        conn = await asyncio.wait_for(connect(runner), runner.connectTimeout.total_seconds())
    parts = [_stop_group_command(tracked["pgid"], grace)] if isinstance(tracked.get("pgid"), int) else []
    parts.append(f"rm -rf {shlex.quote(tracked['dir'])}")
    await asyncio.wait_for(conn.run("; ".join(parts)), grace + 10)


async def _run(
    conn: asyncssh.SSHClientConnection,
    command: str,
    token: str,
    tracked: dict[str, Any],
    tail: deque[str],
    ctx: RunContext,
    job: ScriptJob,
    grace: float,
) -> int:
    loop = asyncio.get_running_loop()
    errors: list[BaseException] = []
    got_pgid = asyncio.Event()

    def deliver(callback: Callable[[str], None] | None, line: str) -> None:
        if callback is not None and not errors:
            try:
                callback(line)
            except Exception as exc:
                errors.append(exc)

    def on_stderr(line: str) -> None:
        if not got_pgid.is_set() and line.startswith(token + " "):
            tracked["pgid"] = int(line.split()[1])
            ctx.track(TRACK_KEY, dict(tracked))
            got_pgid.set()
            return
        tail.append(line)
        deliver(job.on_stderr, line)

    out = LineSplitter(lambda line: deliver(job.on_stdout, line))
    err = LineSplitter(on_stderr)

    async def pump(stream: Any, splitter: LineSplitter) -> None:
        while chunk := await stream.read(65536):
            splitter.feed(chunk)
        splitter.close()

    process = await conn.create_process(command, encoding=None, stdin=None)
    pumps = [asyncio.ensure_future(pump(process.stdout, out)), asyncio.ensure_future(pump(process.stderr, err))]
    try:
        waiting = asyncio.ensure_future(process.wait_closed())
        deadline = None if job.timeout is None else loop.time() + job.timeout
        done, _ = await asyncio.wait([waiting], timeout=None if deadline is None else max(0.0, deadline - loop.time()))
        if not done:
            await _stop(conn, process, tracked, got_pgid, grace)
            raise SSHTimeout(f"timed out after {job.timeout:g} s; the remote commands and their children were killed")
        await asyncio.wait(pumps, timeout=5)
        for p in pumps:
            if p.done() and p.exception() is not None:
                raise p.exception()  # type: ignore[misc]
        if errors:
            raise errors[0]
        status = process.exit_status
        if status is None or status < 0:
            if process.exit_signal:
                return 128 + _signal_number(process.exit_signal[0])
            raise ConnectionError("the channel closed without an exit status")
        return int(status)
    except asyncio.CancelledError:
        await asyncio.shield(_stop(conn, process, tracked, got_pgid, grace))
        raise
    finally:
        for p in pumps:
            p.cancel()
        process.close()


async def _stop(
    conn: asyncssh.SSHClientConnection, process: Any, tracked: dict[str, Any], got_pgid: asyncio.Event, grace: float
) -> None:
    """Kill the remote process group from a second channel (the command's own may be stuck)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(got_pgid.wait(), 2)
    if "pgid" in tracked:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.run(_stop_group_command(tracked["pgid"], grace)), grace + 10)
            return
    with contextlib.suppress(Exception):
        process.send_signal("KILL")


def _signal_number(name: str) -> int:
    import signal

    try:
        return int(signal.Signals["SIG" + name.upper()])
    except KeyError:
        return 0


async def _upload(conn: asyncssh.SSHClientConnection, workdir: str, files: dict[str, bytes | Path]) -> None:
    async with conn.start_sftp_client() as sftp:
        await sftp.makedirs(workdir + "/" + OUTPUT_DIR_NAME)
        await sftp.chmod(workdir, 0o700)
        made = {workdir}
        for name, content in files.items():
            rel = check_relative(name, "input file")
            target = f"{workdir}/{rel}"
            parent = str(PurePosixPath(target).parent)
            if parent not in made:
                await sftp.makedirs(parent, exist_ok=True)
                made.add(parent)
            if isinstance(content, Path):
                await sftp.put(str(content), target)
            else:
                async with sftp.open(target, "wb") as remote:
                    await remote.write(content)


async def _download(
    conn: asyncssh.SSHClientConnection, workdir: str, ctx: RunContext, globs: list[str]
) -> dict[str, Path]:
    """Find the output files remotely (one `find`), then fetch those over SFTP."""
    listing = await conn.run(f"cd {shlex.quote(workdir)} && find {'.' if globs else OUTPUT_DIR_NAME} -type f")
    wanted: dict[str, str] = {}
    for line in str(listing.stdout or "").splitlines():
        rel = line.removeprefix("./")
        name = output_name(rel, globs)
        if name and ".." not in PurePosixPath(name).parts:
            wanted.setdefault(name, f"{workdir}/{rel}")
    if not wanted:
        return {}
    dest = Path(ctx.working_dir) / "outputs"
    files: dict[str, Path] = {}
    async with conn.start_sftp_client() as sftp:
        for name, remote in wanted.items():
            attrs = await sftp.lstat(remote)
            if attrs.permissions is not None and not stat.S_ISREG(attrs.permissions):
                continue
            local = dest / name
            local.parent.mkdir(parents=True, exist_ok=True)
            await sftp.get(remote, str(local))
            files[name] = local
    return files
