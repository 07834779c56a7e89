"""How ``docker.Docker`` runs a job: create the container, copy the inputs in, attach, start, wait,
copy the outputs out, remove it. docker-py is blocking, so each call runs in a thread; output
lines hop back onto the event loop before reaching the job's callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiercel import RunContext, ScriptJob, ScriptResult, TaskError
from tiercel.runners import OUTPUT_DIR_NAME, LineSplitter, extract_outputs, input_tar, shell_script

if TYPE_CHECKING:
    import docker

    from tiercel_docker.runner import Docker

#: The working directory inside the container (exported as WORKING_DIR).
WORK = "/tiercel/work"
#: Key under which the container is tracked with the attempt (see RunContext.track).
TRACK_KEY = "docker.container"
#: Lines of stderr kept for ScriptResult.stderr_tail.
TAIL_LINES = 20


class DockerTimeout(TaskError, TimeoutError):
    """The commands ran past the job's timeout (their container was stopped)."""


async def run_job(runner: Docker, ctx: RunContext, job: ScriptJob) -> ScriptResult:
    if not runner.image:
        raise TaskError("docker.Docker: no image: set `containerImage` on the task or `image` on the taskRunner")
    client = await asyncio.to_thread(connect, runner.host)
    try:
        await asyncio.to_thread(_remove_leftovers, client, ctx)
        await asyncio.to_thread(_ensure_image, client, runner)
        return await _run(client, runner, ctx, job)
    finally:
        client.close()


def connect(host: str | None) -> docker.DockerClient:
    """A client that answered a ping; else a TaskError naming the address and the likely fix."""
    import docker

    address = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.DockerClient(base_url=address, timeout=60) if host else docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        raise TaskError(
            f"docker.Docker: the Docker engine at {address} is unreachable ({exc}); start dockerd "
            f"(or Podman's socket) there, or set the runner's `host` / DOCKER_HOST to where it listens"
        ) from None
    return client


def _labels(ctx: RunContext) -> dict[str, str]:
    labels = {
        "tiercel.runner": "docker.Docker",
        "tiercel.namespace": ctx.namespace,
        "tiercel.flow": ctx.flow_id,
        "tiercel.attempt": str(ctx.attempt),
    }
    if ctx.execution_id:
        labels["tiercel.execution"] = ctx.execution_id
    if ctx.task_run_id:
        labels["tiercel.taskrun"] = ctx.task_run_id
    return labels


def _remove_leftovers(client: docker.DockerClient, ctx: RunContext) -> None:
    """Remove containers an earlier attempt of this task run left (its worker died), so the task
    never runs twice side by side: the ones it tracked, and any labelled with this task run."""
    import docker.errors

    ids = {left[TRACK_KEY] for left in ctx.leftovers if isinstance(left.get(TRACK_KEY), str)}
    if ctx.task_run_id:
        ids |= {c.id for c in client.containers.list(all=True, filters={"label": f"tiercel.taskrun={ctx.task_run_id}"})}
    for cid in ids:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(cid, force=True)
            ctx.logger.warning("removed container %s left running by an earlier attempt", cid[:12])


def _ensure_image(client: docker.DockerClient, runner: Docker) -> None:
    import docker.errors

    image = runner.image
    assert image is not None
    if runner.pullPolicy != "ALWAYS":
        try:
            client.api.inspect_image(image)
            return
        except docker.errors.ImageNotFound:
            if runner.pullPolicy == "NEVER":
                raise TaskError(
                    f"docker.Docker: image `{image}` is not on the engine and pullPolicy is NEVER; "
                    f"pull or build it there first"
                ) from None
    auth = None
    if runner.credentials:
        c = runner.credentials
        auth = {
            k: v
            for k, v in {
                "username": c.username,
                "password": c.password,
                "serveraddress": c.registry,
                "identitytoken": c.identityToken,
                "registrytoken": c.registryToken,
                "auth": c.auth,
            }.items()
            if v
        }
    repository, tag = _split_tag(image)
    try:
        client.api.pull(repository, tag=tag, auth_config=auth)
    except docker.errors.APIError as exc:
        raise TaskError(f"docker.Docker: cannot pull image `{image}`: {exc.explanation or exc}") from None


def _split_tag(image: str) -> tuple[str, str | None]:
    if "@" in image:
        return image, None
    name, _, tag = image.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return image, "latest"


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gi": 1024**3,
    "gib": 1024**3,
}


def parse_bytes(value: str | int, what: str) -> int:
    """``512MB``, ``1GiB``, ``256m`` or a number of bytes, as bytes."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
    if not match or match[2].lower() not in _UNITS:
        raise TaskError(f"docker.Docker: `{what}` {value!r} is not a size (use bytes or a unit: 512MB, 1GiB, 256m)")
    return int(float(match[1]) * _UNITS[match[2].lower()])


def _host_config(client: docker.DockerClient, runner: Docker) -> dict[str, Any]:
    kw: dict[str, Any] = {"init": True, "network_mode": runner.networkMode}
    if runner.cpu:
        kw["nano_cpus"] = int(runner.cpu.cpus * 1e9)
    if runner.memory:
        kw["mem_limit"] = parse_bytes(runner.memory.memory, "memory.memory")
        if runner.memory.memorySwap is not None:
            kw["memswap_limit"] = parse_bytes(runner.memory.memorySwap, "memory.memorySwap")
        if runner.memory.memoryReservation is not None:
            kw["mem_reservation"] = parse_bytes(runner.memory.memoryReservation, "memory.memoryReservation")
    if runner.volumes:
        if os.environ.get("TIERCEL_DOCKER_VOLUMES_ENABLED", "").lower() not in ("1", "true", "yes"):
            raise TaskError(
                "docker.Docker: `volumes` are disabled on this worker (they expose the worker's files to "
                "flow authors); an operator enables them with TIERCEL_DOCKER_VOLUMES_ENABLED=true"
            )
        kw["binds"] = list(runner.volumes)
    return client.api.create_host_config(**kw)


async def _run(client: docker.DockerClient, runner: Docker, ctx: RunContext, job: ScriptJob) -> ScriptResult:

    loop = asyncio.get_running_loop()
    # Without inputs (nor another user, who needs world-writable directories), skip copying an
    # archive in (~70 ms): the shell makes OUTPUT_DIR, the engine makes the working directory.
    copy_in = bool(job.input_files) or bool(runner.user)
    if len(job.commands) == 1 and job.commands[0] and copy_in:
        command = list(job.commands[0])
    else:
        script = shell_script(job.commands, job.fail_fast)
        command = ["/bin/sh", "-c", script if copy_in else f'mkdir -p "$OUTPUT_DIR" || exit 125\n{script}']
    env = {**{k: str(v) for k, v in job.env.items()}, "WORKING_DIR": WORK, "OUTPUT_DIR": f"{WORK}/{OUTPUT_DIR_NAME}"}
    grace = runner.killGracePeriod.total_seconds()

    def create() -> str:
        container = client.api.create_container(
            runner.image,
            command=command,
            entrypoint=runner.entryPoint if runner.entryPoint is not None else [""],
            working_dir=WORK,
            environment=env,
            user=runner.user or None,
            labels=_labels(ctx),
            host_config=_host_config(client, runner),
        )
        cid: str = container["Id"]
        ctx.track(TRACK_KEY, cid)
        if copy_in:
            dirs = ("tiercel", "tiercel/work", f"tiercel/work/{OUTPUT_DIR_NAME}")
            with input_tar(job.input_files, "tiercel/work/", dirs) as archive:
                client.api.put_archive(cid, "/", archive)
        return cid

    cid = await asyncio.to_thread(create)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    errors: list[BaseException] = []

    def deliver(callback: Callable[[str], None] | None, line: str) -> None:
        if callback is not None and not errors:
            try:
                callback(line)
            except Exception as exc:  # a callback that fails fails the attempt, as with core.Process
                errors.append(exc)

    def on_stderr(line: str) -> None:
        tail.append(line)
        deliver(job.on_stderr, line)

    out = LineSplitter(lambda line: loop.call_soon_threadsafe(deliver, job.on_stdout, line))
    err = LineSplitter(lambda line: loop.call_soon_threadsafe(on_stderr, line))

    def pump(stream: Iterator[tuple[bytes | None, bytes | None]]) -> None:
        with contextlib.suppress(Exception):  # the stream ends (or breaks) when the container goes
            for stdout, stderr in stream:
                if stdout:
                    out.feed(stdout)
                if stderr:
                    err.feed(stderr)
        out.close()
        err.close()

    stopped = False
    try:
        stream = await asyncio.to_thread(
            client.api.attach, cid, stdout=True, stderr=True, stream=True, logs=True, demux=True
        )
        pumping = asyncio.ensure_future(asyncio.to_thread(pump, stream))
        await asyncio.to_thread(client.api.start, cid)
        waiting = asyncio.ensure_future(asyncio.to_thread(client.api.wait, cid))
        done, _ = await asyncio.wait([waiting], timeout=job.timeout)
        if not done:
            stopped = True
            await asyncio.shield(asyncio.to_thread(_stop, client, cid, grace))
            raise DockerTimeout(f"timed out after {job.timeout:g} s; the container and everything in it were stopped")
        code = int(waiting.result().get("StatusCode", -1))
        await asyncio.wait([pumping], timeout=5)
        await asyncio.sleep(0)  # let the lines scheduled by the pump reach the callbacks
        if errors:
            raise errors[0]
        outputs = await asyncio.to_thread(_fetch_outputs, client, cid, ctx, job.output_files)
        return ScriptResult(code, outputs, "\n".join(tail))
    except BaseException:
        if not stopped:
            await asyncio.shield(asyncio.to_thread(_stop, client, cid, grace))
        raise
    finally:
        if runner.delete:
            await asyncio.shield(asyncio.to_thread(_remove, client, cid, ctx))


def _stop(client: docker.DockerClient, cid: str, grace: float) -> None:
    """SIGTERM to the container's init (which passes it on), SIGKILL after *grace* seconds."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        client.api.stop(cid, timeout=max(1, round(grace)))


def _remove(client: docker.DockerClient, cid: str, ctx: RunContext) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_container(cid, force=True)
    ctx.track(TRACK_KEY, None)


class _ChunkReader:
    """A file-like view of docker-py's chunk iterator, for tarfile's streaming mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _fetch_outputs(client: docker.DockerClient, cid: str, ctx: RunContext, globs: list[str]) -> dict[str, Path]:
    """Copy the output files out: the whole working directory when globs are given, else OUTPUT_DIR."""
    import docker.errors

    dest = Path(ctx.working_dir) / "outputs"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    path, strip = (WORK, "work/") if globs else (f"{WORK}/{OUTPUT_DIR_NAME}", "")
    try:
        chunks, _ = client.api.get_archive(cid, path, chunk_size=1 << 20)
    except docker.errors.NotFound:
        return {}
    return extract_outputs(_ChunkReader(iter(chunks)), dest, globs, strip)  # type: ignore[arg-type]
