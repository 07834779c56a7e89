"""`tiercel secrets`: the encrypted secret store of a home (values sealed with TIERCEL_SECRET_KEY)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from tiercel.cli.run import home_option


def _store(home: Path | None, create: bool = False) -> Any:
    """The secret store of the home; reading never creates a home."""
    from tiercel.backend import Stores
    from tiercel.home import default_home

    home = home or default_home()
    if not create and not Stores.exists(home):
        raise click.ClickException(f"no secrets: {home} holds no Tiercel database yet "
                                   "(point --home / $TIERCEL_HOME at another home)")
    return Stores.of_home(home).secrets


def _key() -> bytes:
    from tiercel.api import TaskError
    from tiercel.core.secrets import KEY_ENV, secret_key

    try:
        key = secret_key()
    except TaskError as exc:
        raise click.ClickException(str(exc)) from None
    if key is None:
        raise click.ClickException(
            f"{KEY_ENV} is not set: the store encrypts every value with it; make one with "
            f"`tiercel secrets new-key` and export it in every Tiercel process"
        )
    return key


namespace_option = click.option(
    "-n",
    "--namespace",
    default="",
    show_default="global: every namespace sees it",
    help="Namespace of the secret; flows of it and of its sub-namespaces see it.",
)


@click.group()
def secrets() -> None:
    """Set, list and delete secrets kept encrypted in the backend (read by `{{ secret('NAME') }}`)."""


@secrets.command("set")
@click.argument("name")
@click.argument("value", required=False)
@namespace_option
@home_option
def set_(name: str, value: str | None, namespace: str, home: Path | None) -> None:
    """Store secret NAME. Without VALUE (or with `-`), the value is read from standard input,
    so it stays out of the shell's history."""
    from tiercel.core.secrets import seal

    key = _key()
    if value is None or value == "-":
        value = sys.stdin.read().removesuffix("\n")
    if not value:
        raise click.ClickException(f"secret `{name}`: the value is empty")
    _store(home, create=True).put(namespace, name, seal(key, namespace, name, value))
    click.echo(f"secret {name} set in {namespace or '(global)'}")


@secrets.command("list")
@namespace_option
@click.option("--all", "every", is_flag=True, help="List every namespace's secrets.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (names and dates, never values).")
@home_option
def list_(namespace: str, every: bool, as_json: bool, home: Path | None) -> None:
    """List secret names (never their values)."""
    rows = _store(home).names(None if every else namespace)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"namespace": ns, "name": name, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))}
                    for ns, name, t in rows
                ],
                indent=2,
            )
        )
        return
    for ns, name, _ in rows:
        click.echo(f"{ns or '(global)'}\t{name}")


@secrets.command()
@click.argument("name")
@namespace_option
@home_option
def delete(name: str, namespace: str, home: Path | None) -> None:
    """Delete secret NAME of the namespace."""
    if not _store(home).delete(namespace, name):
        raise click.ClickException(f"no secret `{name}` in {namespace or '(global)'}")
    click.echo(f"secret {name} deleted from {namespace or '(global)'}")


@secrets.command("new-key")
def new_key() -> None:
    """Print a new random TIERCEL_SECRET_KEY (32 bytes, base64)."""
    from tiercel.core.secrets import new_key as make

    click.echo(make())
