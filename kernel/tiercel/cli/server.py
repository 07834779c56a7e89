"""`tiercel server` (everything in one process) and `executor`, `worker`, `scheduler`, `webserver` (the parts)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from tiercel.cli.run import home_option


def _options(fn: Any, api: bool = True) -> Any:
    fn = home_option(fn)
    fn = click.option("--worker-slots", default=64, show_default=True, help="Tasks run at once by this process.")(fn)
    fn = click.option("--log-level", default="INFO", show_default=True,
                      type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))(fn)
    if api:
        fn = click.option("--port", default=8080, show_default=True, envvar="TIERCEL_PORT", help="HTTP port.")(fn)
        fn = click.option("--host", default="127.0.0.1", show_default=True, envvar="TIERCEL_BIND",
                          help="Address to listen on (0.0.0.0 for every interface).")(fn)
        fn = click.option("--allowed-hosts", default="", envvar="TIERCEL_ALLOWED_HOSTS", metavar="NAMES",
                          help="Comma-separated host names the API answers to besides loopback names and the "
                               "--host address (a DNS name pointing at this server, or a proxy's).")(fn)
        fn = click.option("--cors-origins", default="", envvar="TIERCEL_CORS_ORIGINS", metavar="ORIGINS",
                          help="Comma-separated origins (https://ui.example.com) whose pages may call the API "
                               "from a browser; none by default.")(fn)
        fn = click.option("--auth/--no-auth", default=None, envvar="TIERCEL_AUTH",
                          help="Require a token, password or login for the API (on by default off loopback, "
                               "where one of the two must be given).")(fn)
    return fn


def auth_settings(host: str, auth: bool | None) -> Any:
    """Authentication is required to listen beyond loopback: refuse to start without a choice."""
    from tiercel.server.auth import AuthSettings
    from tiercel.server.guard import _is_loopback

    if auth is None and not _is_loopback(host.strip("[]")):
        raise click.UsageError(
            f"--host {host} listens beyond loopback, where anyone who reaches the port could run code: start with "
            f"--auth (or TIERCEL_AUTH=1) and create a user (`tiercel users add NAME --role admin`) or a token "
            f"(`tiercel tokens create --role admin`); --no-auth accepts every caller (only behind a proxy that "
            f"authenticates)")
    return AuthSettings(enabled=bool(auth))


def _start(components: tuple[str, ...], home: Path | None, host: str, port: int, worker_slots: int, log_level: str,
           allowed_hosts: str = "", cors_origins: str = "", auth: bool | None = None,
           queues: list[str] | None = None) -> None:
    from tiercel.engine.runtime import default_home
    from tiercel.server.guard import OriginPolicy
    from tiercel.server.service import ServerError, run_process

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
                        stream=sys.stderr)
    home = (home or default_home()).resolve()
    settings = auth_settings(host, auth) if "api" in components else None

    def announce() -> None:
        where = f" on http://{host}:{port} (API docs: http://{host}:{port}/api/v1/docs)" if "api" in components else ""
        if queues:
            where += f", queues {', '.join(queues)}"
        from tiercel.backend import database_of_home, mask_url

        click.echo(f"tiercel {'+'.join(components)} ready{where}, home {home}, database "
                   f"{mask_url(str(database_of_home(home)))}; Ctrl-C stops", err=True)
        if settings is not None and settings.enabled:
            from tiercel.backend import Stores

            stores = Stores.of_home(home)
            empty = stores.auth.empty()
            stores.close()
            click.echo("authentication is on" + (f"; no user or token exists yet: create one with `tiercel users add "
                                                 f"NAME --role admin --home {home}`" if empty else ""), err=True)

    try:
        run_process(home, host, port, components, worker_slots, announce,
                    OriginPolicy.of(host, allowed_hosts.split(","), cors_origins.split(",")), settings, queues)
    except ServerError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    click.echo("stopped", err=True)


@click.command()
@_options
def server(home: Path | None, host: str, port: int, worker_slots: int, log_level: str, allowed_hosts: str,
           cors_origins: str, auth: bool | None) -> None:
    """API, scheduler, executor and worker in one process, on the embedded backend.

    Restarting it resumes what was running and the schedules (missed dates follow each
    trigger's recoverMissedSchedules).
    """
    _start(("api", "scheduler", "executor"), home, host, port, worker_slots, log_level, allowed_hosts, cors_origins,
           auth)


@click.command()
@_options
def webserver(home: Path | None, host: str, port: int, worker_slots: int, log_level: str, allowed_hosts: str,
              cors_origins: str, auth: bool | None) -> None:
    """Only the HTTP API (executions it starts run in this process)."""
    _start(("api",), home, host, port, worker_slots, log_level, allowed_hosts, cors_origins, auth)


def _no_api(name: str, components: tuple[str, ...], doc: str) -> click.Command:
    @click.command(name=name, help=doc)
    @_options_no_api
    def command(home: Path | None, worker_slots: int, log_level: str) -> None:
        _start(components, home, "127.0.0.1", 0, worker_slots, log_level)

    return command


def _options_no_api(fn: Any) -> Any:
    return _options(fn, api=False)


scheduler = _no_api("scheduler", ("scheduler",),
                    "Only schedules, backfills and plugin triggers (their executions' tasks go to `tiercel worker`).")
executor = _no_api("executor", ("executor",),
                   "Only the executor: resolves flows and queues their tasks for `tiercel worker` processes; takes "
                   "over executions whose process died.")


@click.command()
@home_option
@click.option("--concurrency", "-c", default=8, show_default=True, envvar="TIERCEL_WORKER_CONCURRENCY",
              help="Tasks this worker runs at once (its slots).")
@click.option("--queue", "-q", "queues", multiple=True, metavar="NAME",
              help="A queue to take jobs from (repeat for several; `default` when none). Tasks choose theirs with "
                   "`queue: NAME` or Kestra's `workerGroup: {key: NAME}`.")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def worker(home: Path | None, concurrency: int, queues: tuple[str, ...], log_level: str) -> None:
    """Only runs tasks: claims jobs that executors queued, heartbeats, and writes their results.

    A worker killed at any moment loses nothing: once its lease expires (leaseSeconds,
    TIERCEL_LEASE_SECONDS, 10 s by default) its attempts are LOST and run again on another
    worker. Ctrl-C puts its jobs back in the queue at once.
    """
    if concurrency < 1:
        raise click.BadParameter("must be at least 1", param_hint="--concurrency")
    _start(("worker",), home, "127.0.0.1", 0, concurrency, log_level, queues=list(queues) or ["default"])
