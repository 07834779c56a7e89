"""Script tasks: ``scripts.Shell``, ``scripts.Python`` and ``scripts.Node``.

Each takes either ``commands`` (a list of shell commands) or ``script`` (inline code),
which covers Kestra's ``Commands`` and ``Script`` flavours with one type per language. The
task builds a :class:`tiercel.ScriptJob` and hands it to the runner that ``taskRunner``
names (the kernel's process runner by default); the runner moves the files and owns the
processes, the task reads the ``::{json}::`` lines and uploads the output files.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from tiercel import Example, RunContext, Runner, ScriptJob, Task, TaskError

from tiercel_scripts._protocol import LineReader

#: Name of the file that holds a ``script`` in the working directory (plus the language's extension).
SCRIPT_FILE = "_tiercel_script"
#: A ``tiercel://`` URI written in commands: downloaded into URI_DIR and replaced by the local path.
URI = re.compile(r"tiercel://[^\s'\"`;|&<>()]+")
URI_DIR = "_tiercel_files"
#: Interpreters that understand ``set -e`` (added when ``failFast`` is on).
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"})


def _text(value: Any) -> Any:
    """A rendered scalar as text: ``{{ 6 * 7 }}`` renders to 42, a command wants "42"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]


class NamespaceFiles(BaseModel):
    """Which namespace files (``tiercel://<namespace>/_files/…``) to copy into the working directory."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Copy the namespace files at all.")
    include: list[str] | None = Field(None, description="Globs (fnmatch, `*` crosses `/`) of the files to copy; all when omitted.")
    exclude: list[str] | None = Field(None, description="Globs of files not to copy.")


class ScriptTask(Task):
    """Fields and behaviour shared by the script tasks (not registered itself)."""

    commands: list[Text] | None = Field(
        None, description="Shell commands run in order by `interpreter` in one shell, so `cd` and variables carry over; "
                          "a `tiercel://` URI in them is downloaded and replaced by the file's path. "
                          "Set this or `script`, not both.")
    script: Text | None = Field(None, description="Inline code in the task's language. Set this or `commands`, not both.")
    beforeCommands: list[Text] | None = Field(
        None, description="Shell commands run first, in the same shell (set-up: `cd`, `export`, `pip install`…).")
    interpreter: list[str] = Field(
        default_factory=lambda: ["/bin/sh", "-c"],
        description="Program and arguments that run the commands (their text is appended as the last argument). "
                    "A Python or Node `script` without `beforeCommands` runs directly, without it.")
    env: dict[str, Text] | None = Field(None, description="Extra environment variables for the commands.")
    inputFiles: dict[str, Text] | Text | None = Field(
        None, description="Files written into the working directory first: name to inline content or to a `tiercel://` "
                          "URI (downloaded). May also be an expression giving that map, or its JSON text.")
    outputFiles: list[str] | None = Field(
        None, description="Globs, relative to the working directory, of files uploaded to internal storage afterwards; "
                          "read as `outputs.<id>.outputFiles['name']`. Files written to `$OUTPUT_DIR` are uploaded too.")
    namespaceFiles: NamespaceFiles | None = Field(
        None, description="Copy the namespace's files (stored under `tiercel://<namespace>/_files/`) into the working "
                          "directory before `inputFiles`.")
    failFast: bool = Field(
        True, description="Stop at the first failing command (`set -e` when the interpreter is a POSIX shell).")
    warningOnStdErr: bool = Field(
        True, description="Log stderr lines at WARN (true) or INFO (false). Stdout lines are logged at INFO.")
    taskRunner: dict[str, Any] | None = Field(
        None, description="Where the commands run: `{type: core.Process}` (the default, a process on the worker) or "
                          "another runner type with its properties.")
    containerImage: str | None = Field(
        None, description="Image for container runners that take one (`image`); the process runner ignores it.")

    #: Extension of the ``script`` file (subclasses set it).
    extension: ClassVar[str] = ""
    #: Pass ``script`` to the interpreter as text, like commands, instead of writing a file.
    inline_script: ClassVar[bool] = False

    @model_validator(mode="after")
    def _one_of_commands_or_script(self) -> ScriptTask:
        if (self.commands is None) == (self.script is None):
            raise ValueError("set exactly one of `commands` (a list of shell commands) or `script` (inline code)")
        return self

    # --- what subclasses shape -----------------------------------------------------------
    async def prepare(self, ctx: RunContext, env: dict[str, str]) -> list[str]:
        """Add the language's environment (PATH, PYTHONPATH…); return the argv that runs a ``script`` file."""
        raise NotImplementedError

    # --- running -------------------------------------------------------------------------
    async def run(self, ctx: RunContext) -> dict[str, Any]:
        env = {"PYTHONUNBUFFERED": "1"}
        program = await self.prepare(ctx, env)
        for name, value in (self.env or {}).items():
            if name in ("PATH", "PYTHONPATH") and env.get(name):  # keep what prepare() put first
                value = f"{value}{os.pathsep}{env[name]}"
            env[name] = value
        reader = LineReader(ctx, logging.WARNING if self.warningOnStdErr else logging.INFO)
        runner = self._runner(ctx)
        scratch = _Scratch()
        try:
            files = await self._namespace_files(ctx, scratch)
            files.update(await self._input_files(ctx, scratch))
            local = await self._uris_in_commands(ctx, files, scratch)
            job = ScriptJob(commands=self._commands(files, program, local), env=env, input_files=files,
                            output_files=list(self.outputFiles or []),
                            timeout=self.timeout.total_seconds() if self.timeout else None,
                            on_stdout=reader.stdout, on_stderr=reader.stderr, fail_fast=self.failFast)
            result = await runner.run(ctx, job)
        finally:
            scratch.remove()
        if result.exit_code != 0:
            what = "script" if self.script is not None else "commands"
            tail = result.stderr_tail.strip()
            raise TaskError(f"the {what} exited with code {result.exit_code}" + (f"; end of stderr:\n{tail}" if tail else ""))
        outputs: dict[str, Any] = {"exitCode": 0, "vars": reader.vars}
        if self.outputFiles or result.output_files:
            outputs["outputFiles"] = {name: await asyncio.to_thread(ctx.put_file, path, name)
                                      for name, path in result.output_files.items()}
        return outputs

    def _commands(self, files: dict[str, bytes | Path], program: list[str], local: dict[str, str]) -> list[list[str]]:
        if self.script is not None and not self.inline_script:
            name = f"{SCRIPT_FILE}.{self.extension}"
            files[name] = self.script.encode()
            main = [*program, name]
            if not self.beforeCommands:
                return [main]  # nothing to set up: run the program directly, no shell in between
            body = [shlex.join(main)]
        else:
            body = [self.script] if self.script is not None else list(self.commands or [])
        lines = [_swap(line, local) for line in [*(self.beforeCommands or []), *body]]
        if self.failFast and Path(self.interpreter[0]).name in SHELLS:
            lines.insert(0, "set -e")
        return [[*self.interpreter, "\n".join(lines)]]

    async def _uris_in_commands(self, ctx: RunContext, files: dict[str, bytes | Path],
                                scratch: _Scratch) -> dict[str, str]:
        """Download the ``tiercel://`` files named in the commands (Kestra does so); return URI → local path."""
        text = [*(self.beforeCommands or []), *(self.commands or [])]
        if self.inline_script and self.script:
            text.append(self.script)
        local: dict[str, str] = {}
        for uri in dict.fromkeys(URI.findall("\n".join(text))):
            path = f"{URI_DIR}/{len(local)}/{uri.rstrip('/').rsplit('/', 1)[-1]}"
            files[path] = await asyncio.to_thread(_download, ctx, uri, scratch.path())
            local[uri] = path
        return local

    def _runner(self, ctx: RunContext) -> Runner:
        runner = ctx.runner(self.taskRunner)
        if self.containerImage and "image" in type(runner).model_fields and getattr(runner, "image", None) is None:
            runner = runner.model_copy(update={"image": self.containerImage})
        return runner

    async def _input_files(self, ctx: RunContext, scratch: _Scratch) -> dict[str, bytes | Path]:
        spec = self.inputFiles
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except ValueError:
                spec = None
            if not isinstance(spec, dict):
                raise TaskError("property `inputFiles`: expected a map of file name to content or tiercel:// URI "
                                f"(or its JSON text), got {self.inputFiles[:80]!r}")
        files: dict[str, bytes | Path] = {}
        for name, content in (spec or {}).items():
            content = _text(content)
            if not isinstance(content, str):
                content = json.dumps(content)
            if content.startswith("tiercel://"):
                files[name] = await asyncio.to_thread(_download, ctx, content, scratch.path())
            else:
                files[name] = content.encode()
        return files

    async def _namespace_files(self, ctx: RunContext, scratch: _Scratch) -> dict[str, bytes | Path]:
        spec = self.namespaceFiles
        if spec is None or not spec.enabled:
            return {}
        storage = getattr(getattr(ctx, "runtime", None), "storage", None)
        if storage is None:
            raise TaskError("property `namespaceFiles`: this worker gives no access to namespace files")
        prefix = f"tiercel://{ctx.namespace.replace('.', '/')}/_files/"
        files: dict[str, bytes | Path] = {}
        for uri in await asyncio.to_thread(storage.list, prefix):
            name = uri[len(prefix):]
            if spec.include and not any(fnmatch.fnmatchcase(name, g) for g in spec.include):
                continue
            if spec.exclude and any(fnmatch.fnmatchcase(name, g) for g in spec.exclude):
                continue
            files[name] = await asyncio.to_thread(_download, ctx, uri, scratch.path())
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
    """Where environments and the helper live: ``$TIERCEL_CACHE_DIR``, else ``<TIERCEL_HOME>/cache``."""
    if os.environ.get("TIERCEL_CACHE_DIR"):
        return Path(os.environ["TIERCEL_CACHE_DIR"])
    home = getattr(getattr(ctx, "runtime", None), "home", None)
    if home is None:
        home = os.environ.get("TIERCEL_HOME") or Path.cwd() / ".tiercel"
    return Path(home) / "cache"


_HELPER_PATHS: dict[Path, Path] = {}


def helper_path(cache: Path) -> Path:
    """A directory holding only ``tiercel_scripts/helper.py``, for a script's PYTHONPATH.

    A copy rather than this package's own directory, so that a script in a dependencies
    environment sees the helper and nothing else of the worker's installation.
    """
    if cache in _HELPER_PATHS:
        return _HELPER_PATHS[cache]
    source = Path(__file__).with_name("helper.py").read_bytes()
    root = cache / "pythonpath" / hashlib.sha256(source).hexdigest()[:12]
    package = root / "tiercel_scripts"
    if not (package / "helper.py").exists():
        package.mkdir(parents=True, exist_ok=True)
        for name, data in (("__init__.py", b'"""Tiercel script helpers (see helper.py)."""\n'), ("helper.py", source)):
            part = package / f".{name}.{os.getpid()}"
            part.write_bytes(data)
            os.replace(part, package / name)
    _HELPER_PATHS[cache] = root
    return root


def _prepend(env: dict[str, str], name: str, entry: str) -> None:
    current = env.get(name, os.environ.get(name, ""))
    env[name] = f"{entry}{os.pathsep}{current}" if current else entry


# --- the languages -------------------------------------------------------------------------

class Shell(ScriptTask):
    """Run shell commands, or an inline shell script, with ``/bin/sh`` (or another ``interpreter``).

    Lines written as ``::{"outputs": {...}}::`` become ``outputs.<id>.vars``; the exit code
    is ``outputs.<id>.exitCode``. A non-zero exit fails the task with the end of stderr.
    """

    type: ClassVar[str] = "scripts.Shell"
    aliases: ClassVar[tuple[str, ...]] = (
        "scripts.shell.Commands", "scripts.shell.Script",
        "io.kestra.plugin.scripts.shell.Commands", "io.kestra.plugin.scripts.shell.Script",
        "io.kestra.core.tasks.scripts.Bash",
    )
    examples: ClassVar[list[Example]] = [
        Example("Commands, an output value and a file for later tasks", """\
id: shell_commands_example
namespace: company.team
tasks:
  - id: count
    type: scripts.Shell
    inputFiles:
      data.csv: |
        name,score
        ada,3
        grace,5
    outputFiles:
      - report.txt
    commands:
      - wc -l < data.csv > report.txt
      - 'echo "::{\\"outputs\\": {\\"lines\\": $(cat report.txt)}}::"'
  - id: show
    type: core.Log
    message: "{{ outputs.count.vars.lines }} lines, report at {{ outputs.count.outputFiles['report.txt'] }}"
"""),
        Example("An inline script with environment variables", """\
id: shell_script_example
namespace: company.team
tasks:
  - id: greet
    type: scripts.Shell
    env:
      NAME: world
    script: |
      for i in 1 2 3; do
        echo "hello $NAME ($i)"
      done
"""),
    ]

    extension: ClassVar[str] = "sh"
    inline_script: ClassVar[bool] = True

    async def prepare(self, ctx: RunContext, env: dict[str, str]) -> list[str]:
        return list(self.interpreter)


class Python(ScriptTask):
    """Run Python code: an inline ``script``, or shell ``commands`` where ``python`` is on PATH.

    The script runs on the worker's own interpreter, or, with ``dependencies``, in a virtual
    environment built once per dependency list (with ``uv`` when available) and reused by
    every later run. ``from tiercel_scripts.helper import outputs, counter, timer, log``
    works inside the script: it prints the ``::{json}::`` lines the task reads.
    """

    type: ClassVar[str] = "scripts.Python"
    aliases: ClassVar[tuple[str, ...]] = (
        "scripts.python.Commands", "scripts.python.Script",
        "io.kestra.plugin.scripts.python.Commands", "io.kestra.plugin.scripts.python.Script",
    )
    examples: ClassVar[list[Example]] = [
        Example("A script that publishes outputs and a metric", """\
id: python_script_example
namespace: company.team
tasks:
  - id: compute
    type: scripts.Python
    script: |
      from tiercel_scripts.helper import outputs, counter
      squares = [n * n for n in range(10)]
      counter("items", len(squares))
      outputs(total=sum(squares))
  - id: show
    type: core.Log
    message: "total = {{ outputs.compute.vars.total }}"
"""),
        Example("Commands running a module given as an input file", """\
id: python_commands_example
namespace: company.team
tasks:
  - id: run
    type: scripts.Python
    inputFiles:
      main.py: |
        import sys
        print("args:", sys.argv[1:])
    commands:
      - python main.py one two
"""),
        Example("Dependencies installed once into a cached environment", """\
id: python_dependencies_example
namespace: company.team
tasks:
  - id: fetch
    type: scripts.Python
    dependencies:
      - requests
    script: |
      import requests
      print(requests.__version__)
""", run=False),
    ]

    extension: ClassVar[str] = "py"

    dependencies: list[Text] | None = Field(
        None, description="Packages (pip requirement strings) installed into a virtual environment kept in the worker's "
                          "cache and reused by every run with the same list.")

    async def prepare(self, ctx: RunContext, env: dict[str, str]) -> list[str]:
        cache = cache_dir(ctx)
        python = sys.executable
        if self.dependencies:
            from tiercel_scripts._venv import environment

            bin_dir = await environment(ctx, cache, list(self.dependencies), sys.executable)
            env["VIRTUAL_ENV"] = str(bin_dir.parent)
            python = str(bin_dir / "python")
        _prepend(env, "PATH", str(Path(python).parent))
        _prepend(env, "PYTHONPATH", str(helper_path(cache)))
        return [python]


class Node(ScriptTask):
    """Run JavaScript with Node.js: an inline ``script``, or shell ``commands`` (``node``, ``npm``…).

    Needs ``node`` on the worker's PATH. Print ``::{"outputs": {...}}::`` lines to publish
    outputs, as in the other script tasks.
    """

    type: ClassVar[str] = "scripts.Node"
    aliases: ClassVar[tuple[str, ...]] = (
        "scripts.node.Commands", "scripts.node.Script",
        "io.kestra.plugin.scripts.node.Commands", "io.kestra.plugin.scripts.node.Script",
    )
    examples: ClassVar[list[Example]] = [
        Example("An inline script publishing an output", """\
id: node_script_example
namespace: company.team
tasks:
  - id: js
    type: scripts.Node
    script: |
      const total = [1, 2, 3].reduce((a, b) => a + b, 0);
      console.log(`::${JSON.stringify({outputs: {total}})}::`);
  - id: show
    type: core.Log
    message: "total = {{ outputs.js.vars.total }}"
""", run=False),
    ]

    extension: ClassVar[str] = "js"

    async def prepare(self, ctx: RunContext, env: dict[str, str]) -> list[str]:
        return ["node"]
