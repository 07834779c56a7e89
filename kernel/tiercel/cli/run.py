"""`tiercel run FLOW.yaml`: the main job. Runs a flow to completion on the embedded backend.

Exit codes: 0 SUCCESS or WARNING, 1 FAILED or KILLED, 2 invalid flow or inputs.
"""

from __future__ import annotations

import asyncio
import json
import os
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


#: Seconds a first Ctrl-C leaves to choose before the execution is killed.
COUNTDOWN = 5


async def drive(runtime: Any, execution_id: str, interrupt_kills: bool = True, view: Any = None) -> Any:
    """Run the runtime loop until *execution_id* ends.

    A first Ctrl-C asks what to do and kills the execution after a 5 s countdown: at a terminal, `k`
    kills now, `d` detaches (the execution stays for `tiercel executions resume`), `c` goes on
    watching, and a second Ctrl-C kills now; in a pipe, a second Ctrl-C within the countdown detaches.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    server = asyncio.create_task(runtime.serve(stop, poll_interval=0.2))
    person = sys.stdin.isatty() and sys.stdout.isatty()
    state: dict[str, Any] = {"n": 0, "countdown": None, "tty": None, "detached": False}
    resume = f"tiercel executions resume {execution_id}"

    def say(text: str | None) -> None:
        if view is not None and hasattr(view, "notice"):
            view.notice = text
        elif text:
            print(text, file=sys.stderr, flush=True)

    def keys_off() -> None:
        if state["tty"] is not None:
            import termios

            loop.remove_reader(sys.stdin.fileno())
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, state["tty"])
            state["tty"] = None
        if state["countdown"] is not None:
            state["countdown"].cancel()
            state["countdown"] = None

    def kill() -> None:
        keys_off()
        say(f"[red]killing execution {execution_id}…[/]" if person else None)
        if not person:
            print(f"killing execution {execution_id}", file=sys.stderr, flush=True)
        runtime.kill(execution_id)

    def detach() -> None:
        keys_off()
        state["detached"] = True
        stop.set()
        server.cancel()

    def go_on() -> None:
        keys_off()
        state["n"] = 0
        say(None)

    async def countdown() -> None:
        for left in range(COUNTDOWN, 0, -1):
            if person:
                say(f"[bold yellow]Interrupted.[/] [bold]k[/] kill now · [bold]d[/] detach (resume later: {resume}) · "
                    f"[bold]c[/] keep watching — killing in {left} s (Ctrl-C again kills now)")
            await asyncio.sleep(1)
        state["countdown"] = None
        kill()

    def on_key() -> None:
        key = os.read(sys.stdin.fileno(), 16).decode(errors="replace").lower()[:1]
        if key == "k":
            kill()
        elif key == "d":
            detach()
        elif key in ("c", "\x1b"):
            go_on()

    def on_sigint() -> None:
        state["n"] += 1
        if not interrupt_kills:
            detach()
        elif state["n"] == 1:
            if person:
                try:
                    import termios
                    import tty

                    state["tty"] = termios.tcgetattr(sys.stdin.fileno())
                    tty.setcbreak(sys.stdin.fileno())
                    loop.add_reader(sys.stdin.fileno(), on_key)
                except (ImportError, OSError, termios.error):
                    state["tty"] = None
            else:
                print(f"\ninterrupted: killing execution {execution_id} in {COUNTDOWN} s; Ctrl-C again to leave it "
                      f"running for `{resume}`", file=sys.stderr, flush=True)
            state["countdown"] = asyncio.ensure_future(countdown())
        elif state["n"] == 2 and person and state["countdown"] is not None:
            kill()
        elif state["countdown"] is not None or state["n"] > 2 or not person:
            detach()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):
        pass
    waiter = asyncio.create_task(runtime.wait(execution_id))
    try:
        done, _ = await asyncio.wait({waiter, server}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        keys_off()
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass
    stop.set()
    runtime.wake()
    if server in done and not waiter.done():
        waiter.cancel()
        if not server.cancelled() and server.exception() is not None:
            raise server.exception()  # type: ignore[misc]
        if state["detached"]:
            raise Detached(execution_id)
        raise click.Abort()
    await server
    return waiter.result()


class Detached(Exception):
    """The user left a running execution to `tiercel executions resume`."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(execution_id)
        self.execution_id = execution_id


def detached(exc: Detached) -> None:
    click.echo(f"\nleft execution {exc.execution_id} as it is: `tiercel executions resume {exc.execution_id}` "
               "finishes it", err=True)
    sys.exit(130)


def make_view(as_json: bool, quiet: bool, flow: Any = None) -> Any:
    from tiercel.cli.display import LiveView, PlainView

    if as_json or quiet:
        return None
    if sys.stdout.isatty():
        return LiveView(flow)
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
@click.option("--log-format", type=click.Choice(["text", "json"], case_sensitive=False), default=None,
              envvar="TIERCEL_LOG_FORMAT",
              help="json: also write every log line (engine and tasks) to stderr as JSON with its ids.")
def run(flow_file: Path, inputs: tuple[str, ...], as_json: bool, quiet: bool, labels: tuple[str, ...],
        home: Path | None, server: str | None, log_format: str | None) -> None:
    """Run FLOW_FILE to completion, showing task runs and logs as they happen."""
    if log_format == "json":
        from tiercel.observability import logs

        logs.setup("INFO", "json", sys.stderr)
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
    try:
        ex = runtime.new_execution(flow, values, labels=parse_inputs(labels), execution_id=execution_id)
    except InputError as exc:  # ExecutionBlocked: the flow's checks refused it
        click.echo(f"{flow_file}: execution blocked: {exc}", err=True)
        runtime.close()
        sys.exit(2)
    view = make_view(as_json, quiet, flow)
    if view is not None:
        runtime.listeners.append(view)
        if not sys.stdout.isatty():
            click.echo(f"▶ {flow.namespace}.{flow.id}: execution {ex.id}")
    try:
        runtime.submit(ex)
        final = asyncio.run(drive(runtime, ex.id, view=view))
    except Detached as exc:
        if view is not None:
            view.close()
        runtime.close()
        detached(exc)
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
