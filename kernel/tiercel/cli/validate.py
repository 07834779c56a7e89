"""`tiercel validate` and `tiercel schema`: check flows, export the flow JSON Schema."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: a list of errors (file, line, column, task_id, property, message, suggestion).")
def validate(paths: tuple[str, ...], fmt: str) -> None:
    """Check flow files and folders (*.yaml, *.yml, recursively); exit 1 on any error."""
    from tiercel.flow.loader import check_paths

    count, problems = check_paths(list(paths), lint=True, deployed=_deployed())
    errors = [p for p in problems if p.severity == "error"]
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
    from tiercel.home import default_home

    db = default_home() / "tiercel.db"
    if not db.is_file():  # reading never creates a home
        return set()
    from tiercel.backend import Stores

    stores = Stores.open(db)
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
