"""Script tasks: ``scripts.Shell``, ``scripts.Python`` and ``scripts.Node``.

Each takes either ``commands`` (a list of shell commands) or ``script`` (inline code),
which covers Kestra's ``Commands`` and ``Script`` flavours with one type per language. The
task builds a :class:`tiercel.ScriptJob` and hands it to the runner that ``taskRunner``
names (the kernel's process runner by default); the runner moves the files and owns the
processes, the task reads the ``::{json}::`` lines and uploads the output files. That
part lives in :mod:`tiercel_scripts._run`, loaded when a script first runs, so that listing
plugins and validating flows stay cheap.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from tiercel import Example, RunContext, Task


def as_text(value: Any) -> Any:
    """A rendered scalar as text: ``{{ 6 * 7 }}`` renders to 42, a command wants "42"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(as_text)]


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

    targetOS: Literal["AUTO", "LINUX", "WINDOWS"] = Field(
        "AUTO", description="Operating system the commands are written for (Kestra's); WINDOWS fails on another system.")

    @model_validator(mode="before")
    @classmethod
    def _deprecated_runner(cls, data: Any) -> Any:
        """Kestra's deprecated `runner: PROCESS | DOCKER` and `docker: {image, …}`, mapped onto `taskRunner`."""
        if not isinstance(data, dict) or ("runner" not in data and "docker" not in data):
            return data
        data = dict(data)
        runner, docker = data.pop("runner", None), data.pop("docker", None)
        if "taskRunner" in data:
            return data  # the current form wins
        if str(runner or "DOCKER").upper() == "PROCESS":
            data["taskRunner"] = {"type": "core.Process"}
        else:
            spec = dict(docker or {})
            if data.get("containerImage") and "image" not in spec:
                spec["image"] = data["containerImage"]
            data["taskRunner"] = {"type": "io.kestra.plugin.scripts.runner.docker.Docker", **spec}
        return data

    @model_validator(mode="after")
    def _one_of_commands_or_script(self) -> ScriptTask:
        if (self.commands is None) == (self.script is None):
            raise ValueError("set exactly one of `commands` (a list of shell commands) or `script` (inline code)")
        return self

    # --- what subclasses shape -----------------------------------------------------------
    async def prepare(self, ctx: RunContext, env: dict[str, str]) -> list[str]:
        """Add the language's environment (PATH, PYTHONPATH…); return the argv that runs a ``script`` file."""
        raise NotImplementedError

    def prepare_elsewhere(self, env: dict[str, str], files: dict[str, bytes | Path]) -> list[str]:
        """Like :meth:`prepare` for a runner away from the worker's host (a container, a remote host):
        name programs as found there, add any *files* they need; return the argv of a ``script`` file."""
        return list(self.interpreter)

    # --- running -------------------------------------------------------------------------
    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from tiercel_scripts._run import run_script

        return await run_script(self, ctx)


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


#: Directory, in the working directory of a runner away from the worker, that holds the Python helper.
HELPER_DIR = ".tiercel-python"


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
        import site

        from tiercel_scripts._run import cache_dir, helper_path, prepend, scratch_dir
        from tiercel_scripts._venv import run_environment, site_packages

        cache = cache_dir(ctx)
        layers: list[str] = []
        if self.dependencies:
            from tiercel_scripts._venv import environment

            layers += site_packages(await environment(ctx, cache, list(self.dependencies), sys.executable))
        from tiercel_scripts._run import PROCESS_TYPES, _runner_type

        if _runner_type(self) not in PROCESS_TYPES:
            return ["python"]  # a container runner: the image's own Python
        # the task's own environment: `pip install` in its commands never reaches the worker's
        bin_dir = run_environment(scratch_dir(ctx), [*layers, *site.getsitepackages()])
        env["VIRTUAL_ENV"] = str(bin_dir.parent)
        python = str(bin_dir / "python")
        prepend(env, "PATH", str(bin_dir))
        prepend(env, "PYTHONPATH", str(helper_path(cache)))
        return [python]

    def prepare_elsewhere(self, env: dict[str, str], files: dict[str, bytes | Path]) -> list[str]:
        """The image's (or host's) ``python3``, with the helper shipped beside the script."""
        if self.dependencies:
            from tiercel import TaskError

            raise TaskError("`dependencies` are installed on the worker's host, not where this taskRunner runs the "
                            "script: use an image that has them, or `beforeCommands: [pip install …]`")
        helper = Path(__file__).with_name("helper.py")
        files[f"{HELPER_DIR}/tiercel_scripts/__init__.py"] = b'"""Tiercel script helpers (see helper.py)."""\n'
        files[f"{HELPER_DIR}/tiercel_scripts/helper.py"] = helper
        env["PYTHONPATH"] = HELPER_DIR  # relative: the working directory, where the script runs
        return ["python3"]


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
