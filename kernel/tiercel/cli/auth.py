"""`tiercel users`, `tiercel tokens` and `tiercel audit`: who may use the API, and what they did.

Users and tokens are kept in the home's database (``--home``), so the first admin is made on
the server's machine before anyone can log in; `tiercel audit --server URL` reads the log
through the API instead (with ``TIERCEL_TOKEN`` of an admin).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from tiercel.cli.remote import server_option
from tiercel.cli.run import home_option

ROLE = click.Choice(["viewer", "runner", "editor", "admin"])


@contextmanager
def _auth_store(home: Path | None, create: bool = False) -> Iterator[Any]:
    """The auth store of the home; only commands that add something (*create*) make a new home."""
    from tiercel.backend import Stores
    from tiercel.home import default_home

    home = (home or default_home()).resolve()
    if not create and not Stores.exists(home):
        raise click.ClickException(f"{home} holds no Tiercel database yet (point --home / $TIERCEL_HOME at "
                                   f"the server's home, or --db / $TIERCEL_DB at its database)")
    stores = Stores.of_home(home)
    try:
        yield stores.auth
    except ValueError as exc:  # AuthError: the message says what is wrong
        raise click.ClickException(str(exc)) from None
    finally:
        stores.close()


def _password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("the password must have at least 8 characters")
    return password


def _date(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _scope(namespace: str) -> str:
    return namespace or "(all namespaces)"


# --- users -------------------------------------------------------------------------------------


@click.group()
def users() -> None:
    """Manage the users who log in to the API and the UI (passwords hashed with argon2)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=ROLE, required=True, help="viewer, runner, editor or admin.")
@click.option("--namespace", default="", help="The role applies to this namespace and those below it (default: all).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting.")
@home_option
def users_add(name: str, role: str, namespace: str, password_stdin: bool, home: Path | None) -> None:
    """Create a user NAME with a role."""
    password = _password(password_stdin)
    with _auth_store(home, create=True) as store:
        store.add_user(name, password, role, namespace)
    click.echo(f"user {name} added: {role} on {_scope(namespace)}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@home_option
def users_list(as_json: bool, home: Path | None) -> None:
    """List users with their role and namespace."""
    with _auth_store(home) as store:
        rows = store.users()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['name']:<24} {row['role']:<8} {_scope(row['namespace'])}")


@users.command("remove")
@click.argument("name")
@home_option
def users_remove(name: str, home: Path | None) -> None:
    """Delete a user (their sessions end at once)."""
    with _auth_store(home) as store:
        store.remove_user(name)
    click.echo(f"user {name} removed")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting.")
@home_option
def users_passwd(name: str, password_stdin: bool, home: Path | None) -> None:
    """Set a user's password (their sessions end at once)."""
    password = _password(password_stdin)
    with _auth_store(home) as store:
        store.set_password(name, password)
    click.echo(f"password of {name} changed")


# --- tokens ------------------------------------------------------------------------------------


@click.group()
def tokens() -> None:
    """Manage API tokens (sent as `Authorization: Bearer`; stored hashed, shown once)."""


@tokens.command("create")
@click.option("--role", type=ROLE, required=True, help="viewer, runner, editor or admin.")
@click.option("--namespace", default="", help="The token sees only this namespace and those below it (default: all).")
@click.option("--expires", metavar="DURATION", help="ISO-8601 lifetime such as P90D or PT12H (default: never).")
@click.option("--name", help="What the token is for (shown by `tokens list`).")
@home_option
def tokens_create(role: str, namespace: str, expires: str | None, name: str | None, home: Path | None) -> None:
    """Create a token; it is printed once, as the last word."""
    from tiercel.flow.inputs import parse_duration

    expires_at = None
    if expires:
        try:
            expires_at = time.time() + parse_duration(expires).total_seconds()
        except Exception:
            raise click.BadParameter(f"{expires!r} is not an ISO-8601 duration such as P90D",
                                     param_hint="--expires") from None
    with _auth_store(home, create=True) as store:
        token_id, token = store.create_token(role, namespace, name, "cli", expires_at)
    until = f", expires {_date(expires_at)}" if expires_at else ""
    click.echo(f"token {token_id} created: {role} on {_scope(namespace)}{until}. It is shown only now: {token}")


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@home_option
def tokens_list(as_json: bool, home: Path | None) -> None:
    """List tokens (never their secret)."""
    with _auth_store(home) as store:
        rows = store.tokens()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        status = (
            "revoked" if row["revoked"] else ("expired" if row["expires"] and row["expires"] < time.time() else "live")
        )
        click.echo(
            f"{row['id']:<14} {row['role']:<8} {_scope(row['namespace']):<24} {status:<8} "
            f"expires {_date(row['expires'])}  {row['name'] or ''}"
        )


@tokens.command("revoke")
@click.argument("token_id")
@home_option
def tokens_revoke(token_id: str, home: Path | None) -> None:
    """Revoke a token by its id: it stops working at once."""
    with _auth_store(home) as store:
        store.revoke_token(token_id)
    click.echo(f"token {token_id} revoked")


# --- audit -------------------------------------------------------------------------------------


@click.command()
@click.option("--actor", help="Only calls by this user (or token:ID).")
@click.option("--namespace", help="Only calls on this namespace and those below it.")
@click.option("--since", help="Only calls from this date-time on (2026-01-31T00:00:00Z or 2026-01-31).")
@click.option("--limit", default=100, show_default=True, help="At most this many entries, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option
@home_option
def audit(
    actor: str | None,
    namespace: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
    server: str | None,
    home: Path | None,
) -> None:
    """Show the audit log: every state-changing API call, who made it, when and from where."""
    from tiercel.server.app import ApiError, parse_date

    try:
        start = parse_date(since, "--since", strict=False) if since else None
    except ApiError as exc:
        raise click.BadParameter(exc.message, param_hint="--since") from None
    if server:
        from tiercel.server.client import Client, ClientError

        params = {
            "actor": actor,
            "namespace": namespace,
            "size": limit,
            "since": datetime.fromtimestamp(start, UTC).isoformat() if start is not None else None,
        }
        try:
            with Client(server) as client:
                rows = client.call("GET", "/audit", params=params)
        except ClientError as exc:
            raise click.ClickException(str(exc)) from None
    else:
        with _auth_store(home) as store:
            rows = store.audit(actor, namespace, start, None, limit)
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(
            f"{_date(row['date'])}  {row['actor']:<20} {row['method']:<6} {row['status']}  {row['path']}"
            f"  from {row['client'] or '-'}"
        )
