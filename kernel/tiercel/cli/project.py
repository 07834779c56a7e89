"""A project on disk: `tiercel init` (a starter that runs and tests at once), `tiercel dev` (the server on the
project, flows redeployed on save) and `tiercel completion` (shell completion scripts)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

HELLO = """\
id: hello
namespace: {namespace}
description: A first flow. Run it with `tiercel run flows/{namespace}/hello.yaml -i name=Ada`.
inputs:
  - id: name
    type: STRING
    defaults: world
tasks:
  - id: greet
    type: core.Log
    message: "Hello, {{{{ inputs.name }}}}!"
  - id: shout
    type: core.Return
    format: "{{{{ inputs.name | upper }}}}"
outputs:
  - id: greeting
    type: STRING
    value: "Hello, {{{{ outputs.shout.value }}}}!"
"""

HELLO_TEST = """\
flow: hello.yaml
testCases:
  - id: greets_by_name
    fixtures:
      inputs: {{name: Ada}}
    assertions:
      - {{value: "{{{{ execution.state }}}}", equalTo: SUCCESS}}
      - {{value: "{{{{ outputs.shout.value }}}}", equalTo: ADA}}
"""

README = """\
# {name}

A Tiercel project: flows under `flows/<namespace>/`, their unit tests beside them (`*.test.yaml`),
namespace files under `flows/<namespace>/_files/` (read in flows with `{{{{ read('path') }}}}`
once deployed).

    tiercel run flows/{namespace}/hello.yaml -i name=Ada   # run a flow here, watch it live
    tiercel test flows                                       # run the flow tests
    tiercel validate flows                                   # check every flow
    tiercel dev                                              # server on http://127.0.0.1:8080/ui/,
                                                             # flows redeployed on save

Executions and the embedded database live in `.tiercel/` (git-ignored): every `tiercel`
command run inside this folder uses it. Editors validate and complete flows through
`flow.schema.json` (`.vscode/settings.json` maps it for the YAML extension).
"""

GITIGNORE = """\
.tiercel/
__pycache__/
*.pyc
.venv/
"""


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("-n", "--namespace", default="company.team", show_default=True, help="Namespace of the starter flow.")
@click.option("--force", is_flag=True, help="Write into a folder that already holds files (never overwriting them).")
def init(directory: Path, namespace: str, force: bool) -> None:
    """Create a project in DIRECTORY: flows/<namespace>/ with a flow and its test, _files/, .gitignore,
    flow.schema.json, .vscode/settings.json, a README, and the project's home .tiercel/."""
    from tiercel.flow.model import NAMESPACE_PATTERN

    if not re.fullmatch(NAMESPACE_PATTERN, namespace):
        raise click.BadParameter(f"invalid namespace {namespace!r}: lower-case letters, digits, `.`, `_`, `-`",
                                 param_hint="--namespace")
    directory = directory.resolve()
    if directory.exists() and any(directory.iterdir()) and not force:
        raise click.ClickException(f"{directory} is not empty: choose another folder, or pass --force to add the "
                                   "starter files that are missing")
    from tiercel.flow.schema import flow_json_schema

    flows = directory / "flows" / namespace
    files = {
        flows / "hello.yaml": HELLO.format(namespace=namespace),
        flows / "hello.test.yaml": HELLO_TEST.format(),
        flows / "_files" / "README.md": f"Namespace files of `{namespace}`: `tiercel flows deploy flows` uploads them.\n",
        directory / ".gitignore": GITIGNORE,
        directory / "README.md": README.format(name=directory.name, namespace=namespace),
        directory / "flow.schema.json": json.dumps(flow_json_schema(), indent=2) + "\n",
        directory / ".vscode" / "settings.json": json.dumps(
            {"yaml.schemas": {"./flow.schema.json": ["flows/**/*.yaml", "flows/**/*.yml"]},
             "files.associations": {"*.test.yaml": "yaml"}}, indent=2) + "\n",
    }
    written = []
    for path, text in files.items():
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    (directory / ".tiercel").mkdir(exist_ok=True)
    for path in written:
        click.echo(f"+ {path.relative_to(directory)}")
    where = "" if directory == Path.cwd().resolve() else f"cd {_shown(directory)} && "
    click.echo(f"\nnext: {where}tiercel run flows/{namespace}/hello.yaml -i name=Ada && tiercel test flows")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script of SHELL. Load it with, for bash: `eval "$(tiercel completion bash)"`
    (in ~/.bashrc); zsh: `eval "$(tiercel completion zsh)"` (in ~/.zshrc); fish:
    `tiercel completion fish > ~/.config/fish/completions/tiercel.fish`."""
    from click.shell_completion import get_completion_class

    from tiercel.cli.main import cli

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "tiercel", "_TIERCEL_COMPLETE").source())


def _snapshot(folder: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")
            and "_files" not in p.parts and not p.name.endswith((".test.yaml", ".test.yml"))}


@click.command()
@click.argument("directory", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", default=8080, show_default=True, envvar="TIERCEL_PORT", help="HTTP port of the server.")
@click.option("--interval", default=0.5, show_default=True, help="Seconds between two looks at the flow files.")
def dev(directory: Path, port: int, interval: float) -> None:
    """The server on a project, flows redeployed as you save them.

    Starts `tiercel server` on 127.0.0.1:PORT with the project's home (DIRECTORY/.tiercel unless
    $TIERCEL_HOME is set), deploys every flow of DIRECTORY/flows (else DIRECTORY), then watches the
    files: a saved flow is deployed as a new revision, a deleted one is removed, an invalid one prints
    its errors (and the deployed revision stays). Ctrl-C stops everything."""
    from tiercel.flow import FlowValidationError, load_flow_file
    from tiercel.server.client import Client, ClientError

    directory = directory.resolve()
    folder = directory / "flows" if (directory / "flows").is_dir() else directory
    home = Path(os.environ["TIERCEL_HOME"]) if os.environ.get("TIERCEL_HOME") else directory / ".tiercel"
    home.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", "server", "--home", str(home),
                               "--port", str(port), "--host", "127.0.0.1"])
    client = Client(url, timeout=10)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise click.ClickException(f"the server stopped (exit {server.returncode}): see its messages above")
            try:
                client.flows()
                break
            except (ClientError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise click.ClickException(f"the server did not answer on {url}: {exc}") from None
                time.sleep(0.2)
        click.echo(f"tiercel dev: {url}/ui/ · home {home} · watching {folder} (Ctrl-C stops)", err=True)
        seen: dict[Path, float] = {}
        deployed: dict[Path, tuple[str, str]] = {}
        while server.poll() is None:
            now = _snapshot(folder)
            for path in sorted(p for p in now if seen.get(p) != now[p]):
                name = path.relative_to(directory)
                try:
                    flow = load_flow_file(path)
                except FlowValidationError as exc:
                    click.echo(f"✘ {name}: not deployed\n{exc}", err=True)
                    continue
                try:
                    row, outcome = client.deploy(flow.namespace, flow.id, flow.source)
                except ClientError as exc:
                    click.echo(f"✘ {name}: {exc}", err=True)
                    continue
                deployed[path] = (flow.namespace, flow.id)
                if outcome != "unchanged":
                    click.echo(f"{'+' if outcome == 'created' else '~'} {flow.namespace}.{flow.id} "
                               f"revision {row['revision']} ({name})", err=True)
            for path in sorted(set(seen) - set(now)):
                if path in deployed:
                    namespace, flow_id = deployed.pop(path)
                    if namespace and flow_id not in {d[1] for d in deployed.values() if d[0] == namespace}:
                        try:
                            client.delete_flow(namespace, flow_id)
                            click.echo(f"- {namespace}.{flow_id} ({path.relative_to(directory)} deleted)", err=True)
                        except ClientError as exc:
                            click.echo(f"✘ {namespace}.{flow_id}: {exc}", err=True)
            seen = now
            time.sleep(interval)
        raise click.ClickException(f"the server stopped (exit {server.returncode})")
    except KeyboardInterrupt:
        click.echo("\nstopping", err=True)
    finally:
        client.close()
        _stop(server)


def _stop(proc: Any) -> None:
    if proc.poll() is None:
        import signal

        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
