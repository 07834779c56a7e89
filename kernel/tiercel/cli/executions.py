"""`tiercel executions`: list, show, logs, restart, replay, kill and resume executions.

Commands that change an execution run it here until it ends when no live process owns it
(after a crash, say); otherwise they leave a command for its owner to pick up.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from tiercel.cli.remote import server_option
from tiercel.cli.run import drive, exit_code, home_option, make_view, parse_inputs
from tiercel.model import TERMINAL


def _runtime(home: Path | None) -> Any:
    """The runtime of an existing home: reading or acting on executions never creates one."""
    from tiercel.backend import Stores
    from tiercel.engine.runtime import Runtime, default_home

    home = home or default_home()
    if not Stores.exists(home):
        raise click.ClickException(f"no executions: {home} holds no Tiercel database yet "
                                   "(run a flow there, or point --home / $TIERCEL_HOME at another home)")
    return Runtime(home)


def _load(rt: Any, execution_id: str) -> Any:
    ex = rt.stores.executions.load(execution_id)
    if ex is None:
        raise click.ClickException(f"no execution `{execution_id}` in {rt.home}")
    return ex


def _finish(rt: Any, execution_id: str, as_json: bool, quiet: bool = False) -> None:
    """Run the execution here until it ends, then print it and exit with its state."""
    view = make_view(as_json, quiet)
    if view is not None:
        rt.listeners.append(view)
    try:
        final = asyncio.run(drive(rt, execution_id))
    finally:
        if view is not None:
            view.close()
    result = rt.stores.executions.json(final.id)
    rt.close()
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        from tiercel.cli.display import summary

        summary(result)
    sys.exit(exit_code(result["state"]))


def _owned_elsewhere(rt: Any, execution_id: str) -> bool:
    return bool(rt.ownership.owned_elsewhere(execution_id))


def _follow_local(rt: Any, execution_id: str, as_json: bool) -> None:
    """Watch an execution that another process of this home runs (a server, a `tiercel run`)."""
    import time

    from tiercel.cli.display import SnapshotPrinter, summary

    printer = SnapshotPrinter()
    after, first = 0, True
    try:
        while True:
            data = rt.stores.executions.json(execution_id)
            if not as_json:
                if first:
                    printer.header(data)
                    first = False
                entries = rt.stores.logs.query(execution_id, after)
                if entries:
                    after = entries[-1]["id"]
                    printer.logs(entries)
                printer.snapshot(data)
            if data["state"] in TERMINAL:
                break
            if not _owned_elsewhere(rt, execution_id) and data["state"] != "PAUSED":
                raise click.ClickException(f"no live process runs execution {execution_id}: "
                                           f"`tiercel executions resume {execution_id}` finishes it")
            time.sleep(0.2)
    except KeyboardInterrupt:
        click.echo(f"\nstopped watching; execution {execution_id} goes on", err=True)
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(data, default=str))
    else:
        summary(data)
    sys.exit(exit_code(data["state"]))


@click.group()
def executions() -> None:
    """Inspect and control executions."""


@executions.command("list")
@click.option("-n", "--namespace")
@click.option("-f", "--flow", "flow_id")
@click.option("-s", "--state", "states", multiple=True)
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_option
def list_(namespace: str | None, flow_id: str | None, states: tuple[str, ...], limit: int, as_json: bool,
          home: Path | None, server: str | None) -> None:
    """The most recent executions, newest first."""
    if server:
        from tiercel.cli.remote import executions_list

        return executions_list(server, namespace, flow_id, states, limit, as_json)
    rt = _runtime(home)
    rows, total = rt.stores.executions.search(namespace, flow_id, [s.upper() for s in states] or None, size=limit)
    if as_json:
        click.echo(json.dumps({"results": rows, "total": total}, default=str))
        return
    if not rows:
        click.echo("no executions")
        return
    for r in rows:
        started = r["startDate"][:19].replace("T", " ") if r.get("startDate") else ""
        dur = f"{r['duration']:.2f} s" if r.get("duration") is not None else ""
        click.echo(f"{r['id']}  {r['state']:<9} {r['namespace']}.{r['flowId']:<24} {started}  {dur}")
    if total > len(rows):
        click.echo(f"… {total - len(rows)} more (use --limit)")


@executions.command()
@click.argument("namespace")
@click.argument("flow_id")
@click.option("-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE", help="An input of the flow (repeatable).")
@click.option("-l", "--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label of the execution (repeatable).")
@click.option("--wait", is_flag=True, help="Watch it until it ends and exit with its state (always so without --server).")
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_option
def start(namespace: str, flow_id: str, inputs: tuple[str, ...], labels: tuple[str, ...], wait: bool, as_json: bool,
          home: Path | None, server: str | None) -> None:
    """Start the deployed flow NAMESPACE FLOW_ID (on a server with --server, else here on the embedded home)."""
    if server:
        from tiercel.cli.remote import executions_start

        return executions_start(server, namespace, flow_id, parse_inputs(inputs), parse_inputs(labels), wait, as_json)
    from tiercel.engine.runtime import FlowNotFound
    from tiercel.flow.inputs import InputError, resolve_inputs

    rt = _runtime(home)
    try:
        flow, revision = rt.find_flow(namespace, flow_id)
    except FlowNotFound:
        raise click.ClickException(f"no flow {namespace}.{flow_id} deployed in {rt.home} "
                                   "(deploy it with `tiercel flows deploy DIR`, or run a file with `tiercel run`)") from None
    from tiercel.model import new_id

    execution_id = new_id()

    def upload(path: str) -> str:  # a FILE input given as a local path: the user's own file
        uri = rt.storage.input_uri(flow.namespace, flow.id, execution_id, "file", Path(path).name)
        rt.storage.put(uri, Path(path))
        return uri

    try:
        values = resolve_inputs(flow, parse_inputs(inputs), upload=upload)
    except InputError as exc:
        click.echo(f"{namespace}.{flow_id}: {exc}", err=True)
        sys.exit(2)
    ex = rt.new_execution(flow, values, labels=parse_inputs(labels), revision=revision, execution_id=execution_id)
    if not as_json and not sys.stdout.isatty():
        click.echo(f"▶ {namespace}.{flow_id}: execution {ex.id}")
    rt.submit(ex)
    _finish(rt, ex.id, as_json)


@executions.command()
@click.argument("execution_id")
@click.option("-f", "--follow", is_flag=True, help="Watch it until it ends: task runs and logs as they happen.")
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_option
def show(execution_id: str, follow: bool, as_json: bool, home: Path | None, server: str | None) -> None:
    """One execution with its task runs, attempts and outputs."""
    if server:
        from tiercel.cli.remote import executions_show
        from tiercel.cli.remote import follow as follow_remote

        return follow_remote(server, execution_id, as_json) if follow else executions_show(server, execution_id, as_json)
    rt = _runtime(home)
    ex = _load(rt, execution_id)
    if follow:
        return _follow_local(rt, execution_id, as_json)
    data = ex.to_json()
    if as_json:
        click.echo(json.dumps(data, default=str))
        return
    from tiercel.cli.display import summary

    click.echo(f"{ex.namespace}.{ex.flow_id}  labels={json.dumps(ex.labels)}  inputs={json.dumps(ex.inputs, default=str)}")
    summary(data)


@executions.command()
@click.argument("execution_id")
@click.option("-t", "--task", "task_id", help="Only this task's logs.")
@click.option("--level", type=click.Choice(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]), help="Minimum level.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new logs until the execution ends.")
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_option
def logs(execution_id: str, task_id: str | None, level: str | None, follow: bool, as_json: bool,
         home: Path | None, server: str | None) -> None:
    """The logs of an execution."""
    if server:
        from tiercel.cli.remote import executions_logs

        return executions_logs(server, execution_id, task_id, level, follow, as_json)
    import time

    from tiercel.cli.display import log_line

    rt = _runtime(home)
    _load(rt, execution_id)
    after = 0
    while True:
        for entry in rt.stores.logs.query(execution_id, after, task_id, level):
            after = entry["id"]
            click.echo(json.dumps(entry) if as_json else log_line(entry))
        if not follow or rt.stores.executions.load(execution_id).terminal:
            break
        time.sleep(0.3)


@executions.command()
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_option
def kill(execution_id: str, as_json: bool, home: Path | None, server: str | None) -> None:
    """Kill a running execution: its running tasks are cancelled, it ends KILLED."""
    if server:
        from tiercel.cli.remote import executions_command

        return executions_command(server, execution_id, "kill", as_json)
    rt = _runtime(home)
    ex = _load(rt, execution_id)
    if ex.terminal:
        raise click.ClickException(f"execution {execution_id} already ended {ex.state}")
    if _owned_elsewhere(rt, execution_id):
        rt.stores.commands.send(execution_id, "kill")
        click.echo(f"kill requested for {execution_id}")
        return
    rt.recover(execution_id)
    rt.command(execution_id, "kill")
    _finish(rt, execution_id, as_json, quiet=True)


def _upload_resume_files(rt: Any, ex: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """onResume FILE inputs given as local paths, uploaded to internal storage (their value is the URI)."""
    flow = rt.flow_of(ex)
    files = {str(spec.get("id") or spec.get("name")) for tr in ex.task_runs.values() if tr.state == "PAUSED"
             for spec in (getattr(flow.task(tr.task_id), "onResume", None) or [])
             if isinstance(spec, dict) and str(spec.get("type", "")).upper() == "FILE"}
    out = dict(inputs)
    for name in files & set(inputs):
        source = Path(str(inputs[name]))
        if not str(inputs[name]).startswith("tiercel://"):
            if not source.is_file():
                raise click.ClickException(f"onResume input `{name}`: file {str(source)!r} does not exist")
            uri = rt.storage.input_uri(ex.namespace, ex.flow_id, ex.id, name, source.name)
            rt.storage.put(uri, source)
            out[name] = uri
    return out


@executions.command()
@click.argument("execution_id")
@click.option("-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE", help="onResume inputs of the Pause.")
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_option
def resume(execution_id: str, inputs: tuple[str, ...], as_json: bool, home: Path | None, server: str | None) -> None:
    """Resume a paused execution, or finish one whose process died (after a crash)."""
    if server:
        from tiercel.cli.remote import executions_command

        return executions_command(server, execution_id, "resume", as_json, inputs=parse_inputs(inputs))
    rt = _runtime(home)
    ex = _load(rt, execution_id)
    if ex.terminal:
        raise click.ClickException(f"execution {execution_id} already ended {ex.state}; use `restart` to re-run it")
    payload = {"inputs": parse_inputs(inputs)}
    if _owned_elsewhere(rt, execution_id):
        rt.stores.commands.send(execution_id, "resume", payload)
        click.echo(f"resume requested for {execution_id}")
        return
    rt.recover(execution_id)
    if ex.state == "PAUSED" or any(tr.state == "PAUSED" for tr in ex.task_runs.values()):
        payload["inputs"] = _upload_resume_files(rt, ex, payload["inputs"])
        rt.command(execution_id, "resume", payload)
    _finish(rt, execution_id, as_json)


@executions.command()
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_option
def restart(execution_id: str, as_json: bool, home: Path | None, server: str | None) -> None:
    """Re-run the failed task runs of an ended execution, in the same execution, as new attempts."""
    if server:
        from tiercel.cli.remote import executions_command

        return executions_command(server, execution_id, "restart", as_json)
    rt = _runtime(home)
    ex = _load(rt, execution_id)
    if not ex.terminal and ex.state != "PAUSED":
        raise click.ClickException(f"execution {execution_id} is still {ex.state}")
    if ex.state == "SUCCESS":
        raise click.ClickException(f"execution {execution_id} succeeded: nothing to restart (use `replay`)")
    rt.restart(execution_id)
    _finish(rt, execution_id, as_json)


@executions.command()
@click.argument("execution_id")
@click.option("--from", "from_task", metavar="TASK_ID", help="Re-run from this task; keep what ran before it.")
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_option
def replay(execution_id: str, from_task: str | None, as_json: bool, home: Path | None, server: str | None) -> None:
    """A new execution of the same flow and inputs, reusing the task runs before --from."""
    if server:
        from tiercel.cli.remote import executions_command

        return executions_command(server, execution_id, "replay", as_json, taskId=from_task)
    from tiercel.engine.replay import replay_execution

    rt = _runtime(home)
    _load(rt, execution_id)
    try:
        new = replay_execution(rt, execution_id, from_task)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not as_json:
        click.echo(f"replay of {execution_id}: execution {new.id}")
    _finish(rt, new.id, as_json)

