"""`tiercel flows`: deploy a folder of flows (namespace by folder, git-friendly), list, show, delete."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from tiercel.cli.remote import server_option
from tiercel.cli.run import home_option


@click.group()
def flows() -> None:
    """Deploy and inspect flows."""


@flows.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-n", "--namespace", help="Only sync flows of this namespace (and below); default: every namespace found.")
@click.option("--delete", is_flag=True, help="Delete deployed flows (of the synced namespaces) that are no longer in DIRECTORY.")
@click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")
@home_option
@server_option
def deploy(directory: Path, namespace: str | None, delete: bool, dry_run: bool, home: Path | None,
           server: str | None) -> None:
    """Deploy every flow of DIRECTORY (recursively); each file's `namespace` says where it goes."""
    if server:
        from tiercel.cli.remote import flows_deploy

        return flows_deploy(server, directory, namespace, delete, dry_run)
    from tiercel.flow import FlowValidationError, load_flow_file
    from tiercel.flow.loader import collect_files

    files, errors = collect_files([directory])
    found = []
    problems = [str(e) for e in errors]
    for path in files:
        try:
            flow = load_flow_file(path)
        except FlowValidationError as exc:
            problems.append(str(exc))
            continue
        if namespace and not (flow.namespace == namespace or flow.namespace.startswith(namespace + ".")):
            continue
        found.append(flow)
    if problems:
        click.echo("\n".join(problems), err=True)
        click.echo(f"nothing deployed: {len(problems)} invalid file(s)", err=True)
        sys.exit(1)
    repo = _flows(home, create=True)
    seen = {(f.namespace, f.id) for f in found}
    created = updated = unchanged = removed = 0
    for flow in found:
        before = repo.get(flow.namespace, flow.id)
        if dry_run:
            changed = before is None or before["source"] != flow.source
            revision = (before["revision"] + 1 if before else 1) if changed else before["revision"]
        else:
            revision, changed = repo.deploy(flow.namespace, flow.id, flow.source)
        if not changed:
            unchanged += 1
            continue
        created += before is None
        updated += before is not None
        click.echo(f"{'+' if before is None else '~'} {flow.namespace}.{flow.id} (revision {revision})")
    if delete:
        namespaces = {namespace} if namespace else {f.namespace for f in found}
        for row in repo.list():
            if (row["namespace"], row["id"]) in seen:
                continue
            if not any(row["namespace"] == ns or row["namespace"].startswith(ns + ".") for ns in namespaces):
                continue
            if not dry_run:
                repo.delete(row["namespace"], row["id"])
            removed += 1
            click.echo(f"- {row['namespace']}.{row['id']}")
    prefix = "would deploy" if dry_run else "deployed"
    click.echo(f"{prefix}: {created} new, {updated} updated, {unchanged} unchanged, {removed} deleted")
    _sync_files(directory, found, namespace, delete, dry_run, home)


def _sync_files(directory: Path, found: list[Any], only: str | None, delete: bool, dry_run: bool,
                home: Path | None) -> None:
    """Upload each `_files/` folder as the namespace files of the flows beside it (Kestra's git-sync layout):
    `company.team/flow.yaml` with `company.team/_files/etl.py` gives company.team the file `etl.py`."""
    folders = sorted(p for p in directory.rglob("_files") if p.is_dir()
                     and not any(part.startswith(".") for part in p.relative_to(directory).parts))
    if not folders:
        return
    from tiercel.cli.namespace import _checked, _files

    store = _files(home, create=True)
    for folder in folders:
        beside = {f.namespace for f in found if Path(f.path or "").resolve().parent == folder.parent.resolve()}
        if len(beside) > 1:
            raise click.ClickException(f"{folder}: the flows beside it are of several namespaces "
                                       f"({', '.join(sorted(beside))}); give each namespace its own folder")
        ns = beside.pop() if beside else folder.parent.name
        if only and not (ns == only or ns.startswith(only + ".")):
            continue
        names = sorted(_checked(store.normalise, p.relative_to(folder).as_posix())
                       for p in folder.rglob("*") if p.is_file())
        if not dry_run:
            _checked(store.upload_dir, ns, folder)
        removed = [n for n in store.list(ns) if n not in names] if delete else []
        for name in removed:
            if not dry_run:
                store.delete(ns, name)
        click.echo(f"{'would sync' if dry_run else 'synced'} {ns} files: {len(names)} uploaded, {len(removed)} deleted")


@flows.command("list")
@click.option("-n", "--namespace")
@click.option("--json", "as_json", is_flag=True)
@home_option
@server_option
def list_(namespace: str | None, as_json: bool, home: Path | None, server: str | None) -> None:
    """Deployed flows (latest revisions)."""
    if server:
        from tiercel.cli.remote import flows_list

        return flows_list(server, namespace, as_json)
    rows = _flows(home).list(namespace)
    if as_json:
        click.echo(json.dumps([{k: r[k] for k in ("namespace", "id", "revision")} for r in rows]))
        return
    for r in rows:
        click.echo(f"{r['namespace']}.{r['id']}  revision {r['revision']}")
    if not rows:
        click.echo("no flows deployed")


@flows.command()
@click.argument("namespace")
@click.argument("flow_id")
@click.option("-r", "--revision", type=int)
@home_option
@server_option
def show(namespace: str, flow_id: str, revision: int | None, home: Path | None, server: str | None) -> None:
    """Print the source of a deployed flow."""
    if server:
        from tiercel.cli.remote import flows_show

        return flows_show(server, namespace, flow_id, revision)
    row = _flows(home).get(namespace, flow_id, revision)
    if row is None:
        raise click.ClickException(f"no deployed flow {namespace}.{flow_id}")
    click.echo(row["source"], nl=False)


@flows.command()
@click.argument("namespace")
@click.argument("flow_id")
@home_option
@server_option
def delete(namespace: str, flow_id: str, home: Path | None, server: str | None) -> None:
    """Delete a deployed flow (its revisions stay for the executions that used them)."""
    if server:
        from tiercel.cli.remote import flows_delete

        return flows_delete(server, namespace, flow_id)
    if not _flows(home).delete(namespace, flow_id):
        raise click.ClickException(f"no deployed flow {namespace}.{flow_id}")
    click.echo(f"deleted {namespace}.{flow_id}")


def _flows(home: Path | None, create: bool = False) -> Any:
    """The flow store of the home; only deploying creates a home."""
    from tiercel.backend import Stores
    from tiercel.engine.runtime import default_home

    home = home or default_home()
    if create:
        home.mkdir(parents=True, exist_ok=True)
    elif not Stores.exists(home):
        raise click.ClickException(f"no flows deployed: {home} holds no Tiercel database yet "
                                   "(deploy with `tiercel flows deploy DIR`, or point --home / $TIERCEL_HOME elsewhere)")
    return Stores.of_home(home).flows
