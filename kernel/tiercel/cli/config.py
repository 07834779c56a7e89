"""`tiercel config show`: the effective settings and where each comes from, secrets masked."""

from __future__ import annotations

import json

import click


@click.group()
def config() -> None:
    """The configuration: environment variables (TIERCEL_*) over tiercel.yaml over defaults."""


@config.command()
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: file, settings [{key, env, value, source}], defaults."
)
def show(as_json: bool) -> None:
    """Print every setting's effective value and its source (env, file or default)."""
    from tiercel import config as cfg

    data = cfg.read()
    rows = cfg.effective()
    namespaces = sorted(data.get("namespaces") or {})
    defaults = {
        "global": len(data.get("pluginDefaults") or []),
        "namespaces": {
            ns: len(((data.get("namespaces") or {}).get(ns) or {}).get("pluginDefaults") or []) for ns in namespaces
        },
    }
    file = cfg.path()
    if as_json:
        click.echo(
            json.dumps(
                {"file": str(file), "exists": file.is_file(), "settings": rows, "pluginDefaults": defaults}, indent=2
            )
        )
        return
    click.echo(f"# configuration file: {file}{'' if file.is_file() else ' (absent)'}")
    for row in rows:
        value = row["value"] if isinstance(row["value"], str) or row["value"] is None else json.dumps(row["value"])
        click.echo(f"{row['key']:<16} {'-' if value is None else value:<40} {row['source']:<8} {row['env']}")
    click.echo(
        f"pluginDefaults   global: {defaults['global']}, namespaces: "
        + (", ".join(f"{ns} ({n})" for ns, n in defaults["namespaces"].items()) or "none")
    )
