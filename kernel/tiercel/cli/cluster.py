"""`tiercel cluster status`: the live processes and the job queues of a backend."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tiercel.cli.run import home_option


@click.group()
def cluster() -> None:
    """See the processes that share this backend and the work waiting for them."""


@cluster.command()
@home_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def status(home: Path | None, as_json: bool) -> None:
    """Processes (kind, host, pid, version, started, last heartbeat, slots busy/total, queues), the depth and
    oldest waiting job of each queue, and namespace quotas (running/limit, queued)."""
    from tiercel.backend import Stores
    from tiercel.backend.quotas import Quotas
    from tiercel.engine import cluster as view

    if not Stores.exists(home):
        raise click.ClickException(f"no Tiercel backend in {home or 'the home'} (start `tiercel server`, or pass "
                                   "--home or --db)")
    stores = Stores.of_home(home)
    try:
        data = view.status(stores, Quotas(stores.db))
    finally:
        stores.close()
    click.echo(json.dumps(data, indent=2) if as_json else view.render(data))
