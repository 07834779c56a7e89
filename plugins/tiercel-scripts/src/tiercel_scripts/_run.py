"""How a script task runs: the job for the runner, files both ways, the script's outputs.

Kept apart from the models in :mod:`tiercel_scripts.tasks` so that listing plugins and
validating flows never import it (nor asyncio and friends).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiercel import RunContext, Runner, ScriptJob, TaskError
from tiercel_scripts._protocol import LineReader
from tiercel_scripts.tasks import as_text

if TYPE_CHECKING:
    from tiercel_scripts.tasks import ScriptTask


#: Name of the file that holds a ``script`` in the working directory (plus the language's extension).
SCRIPT_FILE = "_tiercel_script"
#: A ``tiercel://`` URI written in commands: downloaded into URI_DIR and replaced by the local path.
URI = re.compile(r"tiercel://[^\s'\"`;|&<>()]+")
URI_DIR = "_tiercel_files"
#: Interpreters that understand ``set -e`` (added when ``failFast`` is on).
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"})


_SCRATCH: dict[int, Path] = {}


def scratch_dir(ctx: RunContext) -> Path:
    """A temporary directory for this run (outside its working directory), removed when the run ends."""
    path = _SCRATCH.get(id(ctx))
    if path is None:
        path = _SCRATCH[id(ctx)] = Path(tempfile.mkdtemp(prefix="tiercel-run-"))
    return path


async def run_script(task: ScriptTask, ctx: RunContext) -> dict[str, Any]:
    """Run *task* (rendered and validated) through its runner; return its outputs."""
    try:
        return await _run_script(task, ctx)
    finally:
        path = _SCRATCH.pop(id(ctx), None)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


async def _run_script(task: ScriptTask, ctx: RunContext) -> dict[str, Any]:
    if task.targetOS == "WINDOWS" and os.name != "nt" and _runner_type(task) in PROCESS_TYPES:
        raise TaskError("targetOS is WINDOWS but this worker runs " + os.uname().sysname)
    env = {"PYTHONUNBUFFERED": "1"}
    traceparent = getattr(ctx, "traceparent", None)
    if traceparent:  # the attempt's span: the script's own spans join the execution's trace
        env["TRACEPARENT"] = traceparent
    runner = _runner(task, ctx)
    support: dict[str, bytes | Path] = {}  # files the program needs where it runs (the Python helper)
    if type(runner).on_worker_host:
        program = await task.prepare(ctx, env)
    else:
        program = task.prepare_elsewhere(env, support)
    for name, value in (task.env or {}).items():
        if name in ("PATH", "PYTHONPATH") and env.get(name):  # the user's entries first; prepare()'s stay reachable
            value = f"{value}{os.pathsep}{env[name]}"
        env[name] = value
    reader = LineReader(ctx, logging.WARNING if task.warningOnStdErr else logging.INFO)
    scratch = _Scratch()
    try:
        files = support
        files.update(await _namespace_files(task, ctx, scratch))
        files.update(await _input_files(task, ctx, scratch))
        local = await _uris_in_commands(task, ctx, files, scratch)
        job = ScriptJob(commands=_commands(task, files, program, local), env=env, input_files=files,
                        output_files=list(task.outputFiles or []),
                        timeout=task.timeout.total_seconds() if task.timeout else None,
                        on_stdout=reader.stdout, on_stderr=reader.stderr, fail_fast=task.failFast)
        result = await runner.run(ctx, job)
    finally:
        scratch.remove()
    if result.exit_code != 0:
        what = "script" if task.script is not None else "commands"
        tail = result.stderr_tail.strip()
        raise TaskError(f"the {what} exited with code {result.exit_code}" + (f"; end of stderr:\n{tail}" if tail else ""))
    outputs: dict[str, Any] = {"exitCode": 0, "vars": reader.vars}
    if task.outputFiles or result.output_files:
        outputs["outputFiles"] = {name: await asyncio.to_thread(ctx.put_file, path, name)
                                  for name, path in result.output_files.items()}
    return outputs


PROCESS_TYPES = ("core.Process", "io.kestra.plugin.core.runner.Process",
                 "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner")


def _runner_type(task: ScriptTask) -> str:
    return str((task.taskRunner or {}).get("type", "core.Process"))


def _commands(task: ScriptTask, files: dict[str, bytes | Path], program: list[str],
              local: dict[str, str]) -> list[list[str]]:
    if task.script is not None and not task.inline_script:
        name = f"{SCRIPT_FILE}.{task.extension}"
        files[name] = task.script.encode()
        main = [*program, name]
        if not task.beforeCommands:
            return [main]  # nothing to set up: run the program directly, no shell in between
        body = [shlex.join(main)]
    else:
        body = [task.script] if task.script is not None else list(task.commands or [])
    lines = [_swap(line, local) for line in [*(task.beforeCommands or []), *body]]
    if task.failFast and Path(task.interpreter[0]).name in SHELLS:
        lines.insert(0, "set -e")
    return [[*task.interpreter, "\n".join(lines)]]


async def _uris_in_commands(task: ScriptTask, ctx: RunContext, files: dict[str, bytes | Path],
                            scratch: _Scratch) -> dict[str, str]:
    """Download the ``tiercel://`` files named in the commands (Kestra does so); return URI → local path."""
    text = [*(task.beforeCommands or []), *(task.commands or [])]
    if task.inline_script and task.script:
        text.append(task.script)
    local: dict[str, str] = {}
    for uri in dict.fromkeys(URI.findall("\n".join(text))):
        path = f"{URI_DIR}/{len(local)}/{uri.rstrip('/').rsplit('/', 1)[-1]}"
        files[path] = await asyncio.to_thread(_download, ctx, uri, scratch.path())
        local[uri] = path
    return local


def _runner(task: ScriptTask, ctx: RunContext) -> Runner:
    runner = ctx.runner(task.taskRunner)
    if task.containerImage and "image" in type(runner).model_fields and getattr(runner, "image", None) is None:
        runner = runner.model_copy(update={"image": task.containerImage})
    return runner


async def _input_files(task: ScriptTask, ctx: RunContext, scratch: _Scratch) -> dict[str, bytes | Path]:
    spec = task.inputFiles
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            spec = None
        if not isinstance(spec, dict):
            raise TaskError("property `inputFiles`: expected a map of file name to content or tiercel:// URI "
                            f"(or its JSON text), got {task.inputFiles[:80]!r}")
    files: dict[str, bytes | Path] = {}
    for name, content in (spec or {}).items():
        content = as_text(content)
        if not isinstance(content, str):
            content = json.dumps(content)
        if content.startswith("tiercel://"):
            files[name] = await asyncio.to_thread(_download, ctx, content, scratch.path())
        else:
            files[name] = content.encode()
    return files


async def _namespace_files(task: ScriptTask, ctx: RunContext, scratch: _Scratch) -> dict[str, bytes | Path]:
    """The namespace files the task selects (``ctx.namespace_files``: the kernel's paths and globs)."""
    spec = task.namespaceFiles
    if spec is None or not spec.enabled:
        return {}
    store = ctx.namespace_files
    files: dict[str, bytes | Path] = {}
    for name in await asyncio.to_thread(store.list, ctx.namespace, spec.include, spec.exclude):
        files[name] = await asyncio.to_thread(_download, ctx, store.uri(ctx.namespace, name), scratch.path())
    ctx.logger.debug("copied %d namespace file(s)", len(files))
    return files


class _Scratch:
    """A temporary directory for downloaded inputs, made only when one is needed (most runs have none)."""

    def __init__(self) -> None:
        self._path: Path | None = None

    def path(self) -> Path:
        if self._path is None:
            self._path = Path(tempfile.mkdtemp(prefix="tiercel-inputs-"))
        return self._path

    def remove(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


def _swap(line: str, local: dict[str, str]) -> str:
    for uri, path in local.items():
        line = line.replace(uri, path)
    return line


def _download(ctx: RunContext, uri: str, tmp: Path) -> Path:
    """Stream *uri* into a fresh file under *tmp*; the runner copies it where the commands run."""
    fd, name = tempfile.mkstemp(dir=tmp)
    try:
        with ctx.open_file(uri) as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except FileNotFoundError:
        raise TaskError(f"input file {uri} does not exist in internal storage") from None
    return Path(name)


def cache_dir(ctx: RunContext) -> Path:
    """Where environments and the helper live: the worker's cache directory."""
    return ctx.cache_dir


_HELPER_PATHS: dict[Path, Path] = {}


def helper_path(cache: Path) -> Path:
    """A directory holding only ``tiercel_scripts/helper.py`` and ``kestra`` (Kestra's ``from kestra import
    Kestra``), for a script's PYTHONPATH.

    A copy rather than this package's own directory, so that a script in a dependencies
    environment sees the helper and nothing else of the worker's installation.
    """
    if cache in _HELPER_PATHS:
        return _HELPER_PATHS[cache]
    source = Path(__file__).with_name("helper.py").read_bytes()
    kestra = Path(__file__).with_name("kestra_compat.py").read_bytes()
    root = cache / "pythonpath" / hashlib.sha256(source + kestra).hexdigest()[:12]
    package = root / "tiercel_scripts"
    if not (root / "kestra" / "__init__.py").exists():
        package.mkdir(parents=True, exist_ok=True)
        (root / "kestra").mkdir(exist_ok=True)
        for target, data in ((package / "__init__.py", b'"""Tiercel script helpers (see helper.py)."""\n'),
                             (package / "helper.py", source), (root / "kestra" / "__init__.py", kestra)):
            part = target.with_name(f".{target.name}.{os.getpid()}")
            part.write_bytes(data)
            os.replace(part, target)
    _HELPER_PATHS[cache] = root
    return root


def prepend(env: dict[str, str], name: str, entry: str) -> None:
    current = env.get(name, os.environ.get(name, ""))
    env[name] = f"{entry}{os.pathsep}{current}" if current else entry
