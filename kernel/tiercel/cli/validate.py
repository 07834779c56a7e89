"""`tiercel validate` and `tiercel schema`: check flows, export the flow JSON Schema."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: a list of errors (file, line, column, task_id, property, message, suggestion).")
@click.option("--show-defaults", is_flag=True,
              help="Also print, per flow, the plugin defaults that apply (flow, namespace, global), nearest first.")
def validate(paths: tuple[str, ...], fmt: str, show_defaults: bool) -> None:
    """Check flow files and folders (*.yaml, *.yml, recursively); exit 1 on any error."""
    from tiercel.flow.loader import check_paths

    count, problems = check_paths(list(paths), lint=True, deployed=_deployed())
    errors = [p for p in problems if p.severity == "error"]
    if show_defaults and not errors:
        _show_defaults(list(paths), fmt)
        if fmt == "json":
            return  # one JSON document: the report
    if fmt == "json":
        click.echo(json.dumps([e.to_json() for e in problems], indent=2))
    else:
        for problem in problems:
            click.echo(str(problem))
        if errors:
            files = len({e.file for e in errors})
            click.echo(f"{len(errors)} error{'s' if len(errors) != 1 else ''} in {files} "
                       f"file{'s' if files != 1 else ''}", err=True)
        else:
            click.echo(f"OK: {count} flow{'s' if count != 1 else ''} valid")
    if errors:
        raise SystemExit(1)


def _deployed() -> set[tuple[str, str]]:
    """(namespace, id) of the flows deployed in the local home, when there is one."""
    from tiercel.backend import Stores

    if not Stores.exists():  # reading never creates a home
        return set()
    try:
        stores = Stores.of_home()
    except Exception:  # an unreachable database only loses the hint
        return set()
    try:
        return {(f["namespace"], f["id"]) for f in stores.flows.list()}
    except Exception:  # an unreadable home only loses the hint
        return set()
    finally:
        stores.close()


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout.")
def schema(out: str | None) -> None:
    """Print the JSON Schema of a flow (every installed task and trigger), for editors."""
    from tiercel.flow.schema import flow_json_schema

    text = json.dumps(flow_json_schema(), indent=2)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text)


def _show_defaults(paths: list[str], fmt: str) -> None:
    """Each flow's plugin defaults with their level, in precedence order (the first setting a property wins)."""
    from tiercel.flow.defaults import outer_defaults
    from tiercel.flow.loader import collect_files, load_flow_file

    report = []
    for path in collect_files(paths)[0]:
        flow = load_flow_file(path)
        chain = [("flow", d) for d in flow.pluginDefaults] + outer_defaults(flow.namespace)
        report.append({"flow": f"{flow.namespace}.{flow.id}", "file": str(path),
                       "defaults": [{"level": level, "type": d.type, "values": d.values, "forced": d.forced}
                                    for level, d in chain]})
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return
    for item in report:
        click.echo(f"{item['flow']} ({item['file']})")
        for d in item["defaults"] or [{"level": "-", "type": "(no plugin defaults)", "values": "", "forced": False}]:
            values = json.dumps(d["values"]) if d["values"] != "" else ""
            click.echo(f"  {d['level']:<22} {d['type']:<24} {values}{'  forced' if d['forced'] else ''}")
