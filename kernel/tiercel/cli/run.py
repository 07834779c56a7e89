"""`tiercel run FLOW.yaml`: the main job. Runs a flow to completion on the embedded backend.

Exit codes: 0 SUCCESS or WARNING, 1 FAILED or KILLED, 2 invalid flow or inputs.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click


def parse_inputs(pairs: tuple[str, ...]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="-i/--input")
        inputs[key.strip()] = value
    return inputs


def exit_code(state: str) -> int:
    from tiercel.model import SUCCEEDED

    return 0 if state in SUCCEEDED else 1


def _set_db(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:  # every part of the process opens the stores through $TIERCEL_DB (Stores.of_home)
        import os

        os.environ["TIERCEL_DB"] = value


def home_option(fn: Any) -> Any:
    fn = click.option("--db", metavar="URL", callback=_set_db, expose_value=False, is_eager=True,
                      help="Database: postgresql://user:password@host:port/db, sqlite:///path or a path (default: "
                           "$TIERCEL_DB, else db: of tiercel.yaml, else tiercel.db in the home).")(fn)
    return click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="TIERCEL_HOME",
                        help="Home of the embedded backend (default: $TIERCEL_HOME, else the .tiercel folder of the project "
                             "you are in, else the user's data folder).")(fn)


async def drive(runtime: Any, execution_id: str, interrupt_kills: bool = True) -> Any:
    """Run the runtime loop until *execution_id* ends; Ctrl-C kills the execution cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    server = asyncio.create_task(runtime.serve(stop, poll_interval=0.2))
    interrupted = {"n": 0}

    def on_sigint() -> None:
        interrupted["n"] += 1
        if interrupted["n"] == 1 and interrupt_kills:
            print("\ninterrupted: killing the execution (Ctrl-C again to leave it to `tiercel executions resume`)",
                  file=sys.stderr)
            runtime.kill(execution_id)
        else:
            stop.set()
            server.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):
        pass
    waiter = asyncio.create_task(runtime.wait(execution_id))
    done, _ = await asyncio.wait({waiter, server}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    runtime.wake()
    if server in done and not waiter.done():
        waiter.cancel()
        if server.exception() is not None and not server.cancelled():
            raise server.exception()  # type: ignore[misc]
        raise click.Abort()
    await server
    return waiter.result()


def make_view(as_json: bool, quiet: bool) -> Any:
    from tiercel.cli.display import LiveView, PlainView

    if as_json or quiet:
        return None
    if sys.stdout.isatty():
        return LiveView()
    return PlainView(sys.stdout)


@click.command()
@click.argument("flow_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE", help="An input of the flow (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print only the final execution as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No live view; only the summary.")
@click.option("-l", "--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label of the execution (repeatable).")
@home_option
@click.option("--server", metavar="URL",
              help="Deploy FLOW_FILE to the server at URL (a new revision only if it changed), run it there and watch it.")
def run(flow_file: Path, inputs: tuple[str, ...], as_json: bool, quiet: bool, labels: tuple[str, ...],
        home: Path | None, server: str | None) -> None:
    """Run FLOW_FILE to completion, showing task runs and logs as they happen."""
    if server:
        from tiercel.cli.remote import run_file

        return run_file(server, flow_file, parse_inputs(inputs), parse_inputs(labels), as_json)
    from tiercel.flow import FlowValidationError, load_flow_file
    from tiercel.flow.inputs import InputError, resolve_inputs

    try:
        flow = load_flow_file(flow_file)
    except FlowValidationError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    from tiercel.engine.runtime import Runtime
    from tiercel.model import new_id

    runtime = Runtime(home, flow_dirs=[flow_file.resolve().parent])
    execution_id = new_id()

    def upload(path: str) -> str:
        source = Path(path)
        if not source.is_file():
            raise ValueError(f"file {path!r} does not exist")
        uri = runtime.storage.input_uri(flow.namespace, flow.id, execution_id, "file", source.name)
        runtime.storage.put(uri, source)
        return uri

    try:
        values = resolve_inputs(flow, parse_inputs(inputs), upload=upload)
    except (InputError, click.BadParameter) as exc:
        click.echo(f"{flow_file}: {exc}", err=True)
        sys.exit(2)
    ex = runtime.new_execution(flow, values, labels=parse_inputs(labels), execution_id=execution_id)
    view = make_view(as_json, quiet)
    if view is not None:
        runtime.listeners.append(view)
        if not sys.stdout.isatty():
            click.echo(f"▶ {flow.namespace}.{flow.id}: execution {ex.id}")
    try:
        runtime.submit(ex)
        final = asyncio.run(drive(runtime, ex.id))
    finally:
        if view is not None:
            view.close()
    result = runtime.stores.executions.json(final.id) if final is not None else None
    runtime.close()
    if result is None:
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        from tiercel.cli.display import summary

        summary(result)
    sys.exit(exit_code(result["state"]))
