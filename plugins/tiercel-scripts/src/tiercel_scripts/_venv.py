"""Cached virtual environments for ``scripts.Python`` ``dependencies``.

One environment per (sorted dependency list, base interpreter), under
``<cache>/venvs/<key>``, built once and reused by every later run: installing packages on
every run is the top complaint about script tasks. ``uv`` builds it when it is on PATH or
beside the worker's interpreter (much faster), ``python -m venv`` and pip otherwise. A lock file serialises concurrent
tasks that need the same environment; a ``.ready`` marker, written last, tells a finished
environment from one whose build was interrupted (that one is rebuilt).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tiercel import RunContext, TaskError

READY = ".ready"
#: Output lines of a failed install shown in the task error.
TAIL = 25


def env_key(dependencies: list[str], python: str) -> str:
    """The cache key: the dependency set (order and duplicates ignored) and the base interpreter."""
    spec = {"dependencies": sorted({d.strip() for d in dependencies}), "python": python, "version": sys.version}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


async def environment(ctx: RunContext, cache: Path, dependencies: list[str], python: str) -> Path:
    """The ``bin`` directory of a virtual environment with *dependencies* installed."""
    key = env_key(dependencies, python)
    root = cache / "venvs"
    target = root / key
    bin_dir = target / "bin"
    if (target / READY).exists():
        ctx.logger.debug("reusing the Python environment %s", target)
        return bin_dir
    root.mkdir(parents=True, exist_ok=True)
    async with _locked(root / f"{key}.lock"):
        if (target / READY).exists():  # built by a concurrent task while we waited
            ctx.logger.info("reusing the Python environment %s (built meanwhile)", target)
            return bin_dir
        shutil.rmtree(target, ignore_errors=True)
        uv = find_uv()
        tool = "uv" if uv else "pip"
        ctx.logger.info("creating a Python environment for %s with %s in %s", ", ".join(dependencies), tool, target)
        if uv:
            await _run(ctx, [uv, "venv", "--quiet", "--python", python, str(target)])
            await _run(ctx, [uv, "pip", "install", "--quiet", "--python", str(bin_dir / "python"), *dependencies])
        else:
            await _run(ctx, [python, "-m", "venv", str(target)])
            await _run(ctx, [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                             "--no-input", *dependencies])
        (target / READY).write_text(json.dumps({"dependencies": dependencies, "python": python, "tool": tool}))
    return bin_dir


def find_uv() -> str | None:
    """``uv`` on PATH, or installed beside the worker's interpreter (``pip install uv``)."""
    beside = Path(sys.executable).with_name("uv")
    return shutil.which("uv") or (str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None)


@contextlib.asynccontextmanager
async def _locked(path: Path) -> AsyncIterator[None]:
    """An exclusive lock file, waited for without blocking the event loop (and cancellable)."""
    with open(path, "w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def _run(ctx: RunContext, argv: list[str]) -> None:
    """Run an install step; a failure becomes a TaskError with the end of its output."""
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                                                env={**os.environ, "PIP_NO_INPUT": "1"})
    try:
        out, _ = await proc.communicate()
    except BaseException:  # cancelled (kill, timeout): stop the install and everything it started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        lines = out.decode(errors="replace").rstrip().splitlines()[-TAIL:]
        raise TaskError(f"installing Python dependencies failed (`{' '.join(argv[:3])} …` exited with "
                        f"{proc.returncode}):\n" + "\n".join(lines))


#: Names that run pip inside a run environment (a shell shim: `python -m pip`, which installs there).
PIP_SHIMS = ("pip", "pip3", f"pip{sys.version_info[0]}.{sys.version_info[1]}")


def run_environment(root: Path, layers: list[str]) -> Path:
    """A fresh virtual environment of the task's own, under *root*; returns its ``bin`` directory.

    It has no packages of its own: a ``.pth`` file makes the *layers* (a dependencies environment,
    then the worker's site-packages) importable after it, so scripts see what they saw before,
    while ``pip install`` (the shims, ``python -m pip``, ``uv pip`` through VIRTUAL_ENV) installs into
    this environment, never into the worker's. Building one takes ~10 ms (no pip copied in).
    """
    import venv

    target = root / "python"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(target)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = target / "lib" / version / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    (site / "_tiercel_layers.pth").write_text("".join(f"{layer}\n" for layer in layers))
    bin_dir = target / "bin"
    for name in PIP_SHIMS:
        shim = bin_dir / name
        shim.write_text('#!/bin/sh\nexec "$(dirname "$0")/python" -m pip "$@"\n')
        shim.chmod(0o755)
    return bin_dir


def site_packages(bin_dir: Path) -> list[str]:
    """The site-packages directories of the environment whose ``bin`` is *bin_dir*."""
    return [str(p) for p in sorted((bin_dir.parent / "lib").glob("python*/site-packages"))]
