"""The CLI against a running server: what `tiercel flows …` and `tiercel executions …` do with ``--server``.

The commands keep their embedded behaviour by default; with ``--server URL`` (or
``TIERCEL_SERVER``) they call these functions, which print the same things from the API.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tiercel.model import SUCCEEDED


def server_option(fn: Callable) -> Callable:
    return click.option("--server", metavar="URL", envvar="TIERCEL_SERVER",
                        help="Talk to the Tiercel server at URL (default: $TIERCEL_SERVER; unset: the embedded home).")(fn)


def _client(url: str) -> Any:
    from tiercel.server.client import Client

    return Client(url)


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


def flows_deploy(url: str, directory: Path, namespace: str | None, delete: bool, dry_run: bool) -> None:
    from tiercel.flow import FlowValidationError, load_flow_file
    from tiercel.flow.loader import collect_files
    from tiercel.server.client import ClientError

    files, errors = collect_files([directory])
    problems, found = [str(e) for e in errors], []
    for path in files:
        try:
            flow = load_flow_file(path)
        except FlowValidationError as exc:
            problems.append(str(exc))
            continue
        if not namespace or flow.namespace == namespace or flow.namespace.startswith(namespace + "."):
            found.append(flow)
    if problems:
        click.echo("\n".join(problems), err=True)
        click.echo(f"nothing deployed: {len(problems)} invalid file(s)", err=True)
        sys.exit(1)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    try:
        with _client(url) as client:
            for flow in found:
                if dry_run:
                    try:
                        before = client.flow(flow.namespace, flow.id)
                        outcome = "unchanged" if before["source"] == flow.source else "updated"
                    except ClientError as exc:
                        if exc.status != 404:
                            raise
                        outcome = "created"
                    revision = "?"
                else:
                    row, outcome = client.deploy(flow.namespace, flow.id, flow.source)
                    revision = row["revision"]
                counts[outcome] += 1
                if outcome != "unchanged":
                    click.echo(f"{'+' if outcome == 'created' else '~'} {flow.namespace}.{flow.id} (revision {revision})")
            if delete:
                seen = {(f.namespace, f.id) for f in found}
                namespaces = {namespace} if namespace else {f.namespace for f in found}
                for row in client.flows():
                    if (row["namespace"], row["id"]) in seen:
                        continue
                    if any(row["namespace"] == ns or row["namespace"].startswith(ns + ".") for ns in namespaces):
                        if not dry_run:
                            client.delete_flow(row["namespace"], row["id"])
                        counts["deleted"] += 1
                        click.echo(f"- {row['namespace']}.{row['id']}")
    except ClientError as exc:
        _fail(exc)
    prefix = "would deploy" if dry_run else "deployed"
    click.echo(f"{prefix} to {url}: {counts['created']} new, {counts['updated']} updated, "
               f"{counts['unchanged']} unchanged, {counts['deleted']} deleted")


def flows_list(url: str, namespace: str | None, as_json: bool) -> None:
    from tiercel.server.client import ClientError

    try:
        with _client(url) as client:
            rows = client.flows(namespace)
    except ClientError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps([{k: r[k] for k in ("namespace", "id", "revision")} for r in rows]))
        return
    for r in rows:
        click.echo(f"{r['namespace']}.{r['id']}  revision {r['revision']}")
    if not rows:
        click.echo("no flows deployed")


def flows_show(url: str, namespace: str, flow_id: str, revision: int | None) -> None:
    from tiercel.server.client import ClientError

    try:
        with _client(url) as client:
            click.echo(client.flow(namespace, flow_id, revision)["source"], nl=False)
    except ClientError as exc:
        _fail(exc)


def flows_delete(url: str, namespace: str, flow_id: str) -> None:
    from tiercel.server.client import ClientError

    try:
        with _client(url) as client:
            client.delete_flow(namespace, flow_id)
    except ClientError as exc:
        _fail(exc)
    click.echo(f"deleted {namespace}.{flow_id}")


def executions_list(url: str, namespace: str | None, flow_id: str | None, states: tuple[str, ...], limit: int,
                    as_json: bool) -> None:
    from tiercel.server.client import ClientError

    try:
        with _client(url) as client:
            data = client.search(namespace, flow_id, [s.upper() for s in states], size=limit)
    except ClientError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(data, default=str))
        return
    rows, total = data["results"], data["total"]
    if not rows:
        click.echo("no executions")
        return
    for r in rows:
        started = r["startDate"][:19].replace("T", " ") if r.get("startDate") else ""
        dur = f"{r['duration']:.2f} s" if r.get("duration") is not None else ""
        click.echo(f"{r['id']}  {r['state']:<9} {r['namespace']}.{r['flowId']:<24} {started}  {dur}")
    if total > len(rows):
        click.echo(f"… {total - len(rows)} more (use --limit)")


def executions_show(url: str, execution_id: str, as_json: bool) -> None:
    from tiercel.server.client import ClientError

    try:
        with _client(url) as client:
            data = client.execution(execution_id)
    except ClientError as exc:
        _fail(exc)
    _print_execution(data, as_json, header=True)


def _print_execution(data: dict[str, Any], as_json: bool, header: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(data, default=str))
        return
    from tiercel.cli.display import summary

    if header:
        click.echo(f"{data['namespace']}.{data['flowId']}  labels={json.dumps(data['labels'])}  "
                   f"inputs={json.dumps(data['inputs'], default=str)}")
    summary(data)


def executions_logs(url: str, execution_id: str, task_id: str | None, level: str | None, follow: bool,
                    as_json: bool) -> None:
    from tiercel.cli.display import log_line
    from tiercel.server.client import ClientError

    try:
        with _client(url) as client:
            entries = client.follow_logs(execution_id, task_id, level) if follow else client.logs(execution_id, task_id, level)
            for entry in entries:
                click.echo(json.dumps(entry) if as_json else log_line(entry))
    except ClientError as exc:
        _fail(exc)


def executions_command(url: str, execution_id: str, kind: str, as_json: bool, **params: Any) -> None:
    """kill, resume, restart or replay through the server; restart and replay wait for the end."""
    from tiercel.server.client import ClientError

    if kind in ("restart", "replay"):
        params["wait"] = "true"
    try:
        with _client(url) as client:
            result = client.command(execution_id, kind, **params)
    except ClientError as exc:
        _fail(exc)
    if kind in ("kill", "resume"):
        click.echo(json.dumps(result) if as_json else f"{kind} requested for {execution_id}")
        return
    _print_execution(result, as_json)
    sys.exit(0 if result["state"] in SUCCEEDED else 1)


def follow(url: str, execution_id: str, as_json: bool) -> None:
    """Watch an execution on a server until it ends: its task runs and logs as they happen, then
    the summary; exit with its state. Ctrl-C stops watching and leaves the execution running."""
    from tiercel.cli.display import watcher
    from tiercel.server.client import ClientError

    printer = watcher(as_json)
    after, final = 0, None
    try:
        with _client(url) as client:
            for ex in client.follow_execution(execution_id):
                if final is None and not as_json:
                    printer.header(ex)
                final = ex
                if as_json:
                    continue
                entries = client.logs(execution_id, after=after)
                if entries:
                    after = entries[-1]["id"]
                    printer.logs(entries)
                printer.snapshot(ex)
    except ClientError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        printer.close()
        click.echo(f"\nstopped watching; execution {execution_id} goes on "
                   f"(`tiercel executions show {execution_id} --follow --server {url}`)", err=True)
        sys.exit(130)
    finally:
        printer.close()
    if final is None:
        _fail(RuntimeError(f"the server sent nothing for execution {execution_id}"))
    _print_execution(final, as_json)
    sys.exit(0 if final["state"] in SUCCEEDED else 1)


def executions_start(url: str, namespace: str, flow_id: str, inputs: dict[str, str], labels: dict[str, str],
                     wait: bool, as_json: bool) -> None:
    from tiercel.server.client import ClientError

    try:
        with _client(url) as client:
            ex = client.run(namespace, flow_id, inputs, labels)
    except ClientError as exc:
        _fail(exc)
    if wait:
        follow(url, ex["id"], as_json)
    if as_json:
        click.echo(json.dumps(ex, default=str))
    else:
        click.echo(f"started {namespace}.{flow_id}: execution {ex['id']}\n"
                   f"  watch it: tiercel executions show {ex['id']} --follow --server {url}")


def run_file(url: str, flow_file: Path, inputs: dict[str, str], labels: dict[str, str], as_json: bool) -> None:
    """`tiercel run FILE --server URL`: deploy the file's flow (a new revision only if it changed), run it, watch it."""
    from tiercel.flow import FlowValidationError, load_flow_file
    from tiercel.server.client import ClientError

    try:
        flow = load_flow_file(flow_file)
    except FlowValidationError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    try:
        with _client(url) as client:
            row, outcome = client.deploy(flow.namespace, flow.id, flow.source)
    except ClientError as exc:
        _fail(exc)
    if not as_json and outcome != "unchanged":
        click.echo(f"{outcome} {flow.namespace}.{flow.id} revision {row['revision']} on {url}")
    executions_start(url, flow.namespace, flow.id, inputs, labels, True, as_json)
