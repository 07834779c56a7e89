"""`tiercel kv`: the key/value store of a home, per namespace (what `core.kv.*` tasks and `kv()` read)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tiercel.cli.run import home_option


def _kv(home: Path | None, create: bool = False) -> Any:
    """The key/value store of the home; reading never creates a home."""
    from tiercel.backend import Stores
    from tiercel.home import default_home

    home = home or default_home()
    if not create and not Stores.exists(home):
        raise click.ClickException(f"no key/value store: {home} holds no Tiercel database yet "
                                   "(point --home / $TIERCEL_HOME at another home)")
    return Stores.of_home(home).kv


def _iso(ts: float | None) -> str | None:
    import time

    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@click.group()
def kv() -> None:
    """Get, set, list and delete values of a namespace's key/value store."""


@kv.command("set")
@click.argument("namespace")
@click.argument("key")
@click.argument("value")
@click.option(
    "-t",
    "--type",
    "kind",
    default="STRING",
    show_default=True,
    type=click.Choice(["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"], case_sensitive=False),
    help="Type of the value, checked before it is stored.",
)
@click.option("--ttl", help="Time to live, an ISO-8601 duration (PT1H).")
@click.option("--no-overwrite", is_flag=True, help="Fail when the key already has a value.")
@home_option
def set_(
    namespace: str, key: str, value: str, kind: str, ttl: str | None, no_overwrite: bool, home: Path | None
) -> None:
    """Store VALUE under KEY of NAMESPACE."""
    from tiercel.core.kv import typed
    from tiercel.flow.inputs import parse_duration

    try:
        stored = typed(value, kind)
        seconds = parse_duration(ttl).total_seconds() if ttl else None
    except Exception as exc:  # the type checks raise ValueError, parse_duration its own error: both say why
        raise click.ClickException(f"{key}: {exc}") from None
    if not _kv(home, create=True).set(namespace, key, stored, ttl=seconds, type=kind.upper(), overwrite=not no_overwrite):
        raise click.ClickException(f"key `{key}` already exists in {namespace} (drop --no-overwrite to replace it)")
    click.echo(f"{namespace} {key} = {json.dumps(stored)} ({kind.upper()})")


@kv.command()
@click.argument("namespace")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print {key, type, value, expirationDate, updateDate}.")
@home_option
def get(namespace: str, key: str, as_json: bool, home: Path | None) -> None:
    """Print the value of KEY (exit 1 when missing or expired)."""
    entry = _kv(home).entry(namespace, key)
    if entry is None:
        raise click.ClickException(f"no key `{key}` in {namespace}")
    if as_json:
        click.echo(
            json.dumps(
                {
                    "key": entry.key,
                    "type": entry.type,
                    "value": entry.value,
                    "expirationDate": _iso(entry.expires_at),
                    "updateDate": _iso(entry.updated_at),
                }
            )
        )
    else:
        click.echo(entry.value if isinstance(entry.value, str) else json.dumps(entry.value))


@kv.command("list")
@click.argument("namespace")
@click.option("--prefix", default="", help="Only keys starting with this.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@home_option
def list_(namespace: str, prefix: str, as_json: bool, home: Path | None) -> None:
    """List the live keys of NAMESPACE with their types and expiry."""
    entries = _kv(home).entries(namespace, prefix)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "key": e.key,
                        "type": e.type,
                        "expirationDate": _iso(e.expires_at),
                        "updateDate": _iso(e.updated_at),
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return
    for e in entries:
        click.echo(f"{e.key}\t{e.type}\t{_iso(e.expires_at) or '-'}")


@kv.command()
@click.argument("namespace")
@click.argument("key")
@home_option
def delete(namespace: str, key: str, home: Path | None) -> None:
    """Delete KEY of NAMESPACE."""
    if not _kv(home).delete(namespace, key):
        raise click.ClickException(f"no key `{key}` in {namespace}")
    click.echo(f"deleted {namespace} {key}")
