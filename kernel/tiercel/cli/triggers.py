"""`tiercel triggers`: list triggers (next date, last execution), enable or disable them, backfill schedules.

Without ``--server`` the commands read and write the embedded home directly: a backfill
recorded there is carried out by whichever scheduler runs on that home.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tiercel.cli.remote import server_option
from tiercel.cli.run import home_option, parse_inputs


class _Local:
    """The embedded home, answering like the API does."""

    def __init__(self, home: Path | None) -> None:
        from tiercel.cli.executions import _runtime
        from tiercel.engine.scheduler import Scheduler

        self.rt = _runtime(home)
        self.scheduler = Scheduler(self.rt)
        self.scheduler.index.refresh()

    def __enter__(self) -> _Local:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.rt.close()

    def triggers(self, namespace: str | None = None, flow_id: str | None = None) -> list[dict[str, Any]]:
        from tiercel.engine.scheduler import describe_trigger

        rows = self.scheduler.store.all()
        return [describe_trigger(d, t, rows.get((d.namespace, d.id, t.id)))
                for d in self.scheduler.index.all()
                if (not namespace or d.namespace == namespace or d.namespace.startswith(namespace + "."))
                and (not flow_id or d.id == flow_id) for t in d.flow.triggers]

    def _find(self, namespace: str, flow_id: str, trigger_id: str) -> tuple[Any, Any]:
        d = self.scheduler.index.get(namespace, flow_id)
        if d is None:
            raise click.ClickException(f"no deployed flow {namespace}.{flow_id}")
        for t in d.flow.triggers:
            if t.id == trigger_id:
                return d, t
        raise click.ClickException(f"flow {namespace}.{flow_id} has no trigger `{trigger_id}`")

    def trigger_action(self, namespace: str, flow_id: str, trigger_id: str, action: str,
                       body: dict[str, Any] | None = None) -> dict[str, Any]:
        d, t = self._find(namespace, flow_id, trigger_id)
        if action in ("enable", "disable"):
            self.scheduler.store.set_disabled(namespace, flow_id, trigger_id, type(t).type, action == "disable")
        elif action == "backfill":
            from tiercel.server.app import parse_date

            if type(t).type != "core.Schedule":
                raise click.ClickException(f"trigger `{trigger_id}` is a {type(t).type}: only schedules are backfilled")
            assert body is not None
            self.scheduler.backfill(d, t, parse_date(body["start"], "--start", strict=False),
                                    parse_date(body["end"], "--end", strict=False) if body.get("end") else None,
                                    body.get("inputs"), body.get("labels"))
        else:
            verb = action.split("/", 1)[1]
            if self.scheduler.set_backfill(d, t, "cancel" if verb == "cancel" else verb) is None:
                raise click.ClickException(f"trigger `{trigger_id}` of {namespace}.{flow_id} has no backfill in progress")
        return next(x for x in self.triggers(namespace, flow_id) if x["triggerId"] == trigger_id)


def _target(home: Path | None, server: str | None) -> Any:
    if server:
        from tiercel.server.client import Client

        return Client(server)
    return _Local(home)


def _run(home: Path | None, server: str | None, fn: Any) -> Any:
    from tiercel.server.app import ApiError
    from tiercel.server.client import ClientError

    try:
        with _target(home, server) as target:
            return fn(target)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    except ApiError as exc:
        raise click.ClickException(exc.message) from None


def _line(t: dict[str, Any]) -> str:
    state = "disabled" if t["disabled"] else "enabled"
    nxt = f"  next {t['nextExecutionDate']}" if t.get("nextExecutionDate") else ""
    last = f"  last execution {t['executionId']}" if t.get("executionId") else ""
    bf = t.get("backfill")
    backfill = (f"  backfill {bf['created']}/{bf['total']}{' paused' if bf['paused'] else ''}" if bf else "")
    return f"{t['namespace']}.{t['flowId']}/{t['triggerId']}  {t['type']}  {state}{nxt}{last}{backfill}"


@click.group()
def triggers() -> None:
    """List triggers, enable or disable them, backfill schedules."""


@triggers.command("list")
@click.option("-n", "--namespace")
@click.option("-f", "--flow", "flow_id")
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_option
def list_(namespace: str | None, flow_id: str | None, as_json: bool, home: Path | None, server: str | None) -> None:
    """Every trigger of the deployed flows, with its next fire date and last execution."""
    rows = _run(home, server, lambda t: t.triggers(namespace, flow_id))
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(_line(row))
    if not rows:
        click.echo("no triggers")


def _simple(action: str, doc: str) -> click.Command:
    @click.command(name=action, help=doc)
    @click.argument("namespace")
    @click.argument("flow_id")
    @click.argument("trigger_id")
    @home_option
    @server_option
    def command(namespace: str, flow_id: str, trigger_id: str, home: Path | None, server: str | None) -> None:
        click.echo(_line(_run(home, server, lambda t: t.trigger_action(namespace, flow_id, trigger_id, action))))

    return command


triggers.add_command(_simple("enable", "Enable a trigger (missed dates follow its recoverMissedSchedules)."))
triggers.add_command(_simple("disable", "Disable a trigger: it starts nothing until enabled again."))


@triggers.group()
def backfill() -> None:
    """Run a schedule for past dates, in order, within the flow's concurrency."""


@backfill.command("start")
@click.argument("namespace")
@click.argument("flow_id")
@click.argument("trigger_id")
@click.option("--start", required=True, help="First date (ISO-8601, e.g. 2026-01-01T00:00:00Z).")
@click.option("--end", help="Last date (default: now).")
@click.option("-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE")
@click.option("-l", "--label", "labels", multiple=True, metavar="KEY=VALUE")
@home_option
@server_option
def backfill_start(namespace: str, flow_id: str, trigger_id: str, start: str, end: str | None,
                   inputs: tuple[str, ...], labels: tuple[str, ...], home: Path | None, server: str | None) -> None:
    """Start a backfill of a core.Schedule trigger."""
    body = {"start": start, "end": end, "inputs": parse_inputs(inputs), "labels": parse_inputs(labels)}
    click.echo(_line(_run(home, server, lambda t: t.trigger_action(namespace, flow_id, trigger_id, "backfill", body))))


def _backfill_verb(verb: str) -> click.Command:
    @click.command(name=verb, help=f"{verb.capitalize()} the backfill in progress.")
    @click.argument("namespace")
    @click.argument("flow_id")
    @click.argument("trigger_id")
    @home_option
    @server_option
    def command(namespace: str, flow_id: str, trigger_id: str, home: Path | None, server: str | None) -> None:
        click.echo(_line(_run(home, server, lambda t: t.trigger_action(namespace, flow_id, trigger_id, f"backfill/{verb}"))))

    return command


for _verb in ("pause", "unpause", "cancel"):
    backfill.add_command(_backfill_verb(_verb))
