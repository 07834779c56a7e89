"""`tiercel db`: the database's schema revision, and its upgrade with Alembic (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from pathlib import Path

import click

from tiercel.cli.run import home_option


def _target(home: Path | None) -> str:
    from tiercel.backend import database_of_home, is_url

    target = database_of_home(home)
    return str(target) if is_url(target) else f"sqlite:///{Path(target).resolve()}"


@click.group()
def db() -> None:
    """The database: `--db URL` / $TIERCEL_DB / db: of tiercel.yaml, else tiercel.db in the home."""


@db.command()
@home_option
def upgrade(home: Path | None) -> None:
    """Apply the Alembic migrations up to the revision this Tiercel needs (stop other processes first)."""
    from tiercel.backend import SCHEMA_HEAD, mask_url
    from tiercel.backend.db import current_revision, migrate, revisions

    url = _target(home)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    before = current_revision(url)
    if before is not None and before not in revisions():
        raise click.ClickException(f"the database {mask_url(url)} is at revision {before}, newer than this Tiercel "
                                   f"knows (its head is {SCHEMA_HEAD}): upgrade Tiercel instead")
    migrate(url)
    after = current_revision(url)
    if before == after:
        click.echo(f"{mask_url(url)}: already at revision {after} (head)")
    else:
        click.echo(f"{mask_url(url)}: upgraded from {before or 'an empty database'} to {after}")


@db.command()
@home_option
def current(home: Path | None) -> None:
    """Print the database's schema revision and the one this Tiercel needs."""
    from tiercel.backend import SCHEMA_HEAD, mask_url
    from tiercel.backend.db import current_revision

    url = _target(home)
    revision = current_revision(url)
    state = "up to date" if revision == SCHEMA_HEAD else f"needs `tiercel db upgrade` (head {SCHEMA_HEAD})"
    if revision is None:
        state = f"empty: created at {SCHEMA_HEAD} on first use, or by `tiercel db upgrade`"
    click.echo(f"{mask_url(url)}: revision {revision or 'none'}, {state}")
