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
        fn = click.option("--access-log", is_flag=True, envvar="TIERCEL_ACCESS_LOG",
                          help="Log one line per HTTP request (client, method, path, status).")(fn)
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
           allowed_hosts: str = "", cors_origins: str = "", auth: bool | None = None) -> None:
    from tiercel.engine.runtime import default_home
    from tiercel.server.guard import OriginPolicy
    from tiercel.server.service import ServerError, run_process

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
                        stream=sys.stderr)
    home = (home or default_home()).resolve()
    settings = auth_settings(host, auth) if "api" in components else None

    def announce() -> None:
        where = f" on http://{host}:{port} (API docs: http://{host}:{port}/api/v1/docs)" if "api" in components else ""
        click.echo(f"tiercel {'+'.join(components)} ready{where}, home {home}; Ctrl-C stops", err=True)
        if settings is not None and settings.enabled:
            from tiercel.backend import Stores

            stores = Stores.open(home / "tiercel.db")
            empty = stores.auth.empty()
            stores.close()
            click.echo("authentication is on" + (f"; no user or token exists yet: create one with `tiercel users add "
                                                 f"NAME --role admin --home {home}`" if empty else ""), err=True)

    try:
        run_process(home, host, port, components, worker_slots, announce,
                    OriginPolicy.of(host, allowed_hosts.split(","), cors_origins.split(",")), settings)
    except ServerError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    click.echo("stopped", err=True)


def _access_log(on: bool) -> None:
    if on:
        import os

        os.environ["TIERCEL_ACCESS_LOG"] = "1"


@click.command()
@_options
def server(home: Path | None, host: str, port: int, worker_slots: int, log_level: str, allowed_hosts: str,
           cors_origins: str, auth: bool | None, access_log: bool) -> None:
    """API, scheduler, executor and worker in one process, on the embedded backend.

    Restarting it resumes what was running and the schedules (missed dates follow each
    trigger's recoverMissedSchedules).
    """
    _access_log(access_log)
    _start(("api", "scheduler", "executor"), home, host, port, worker_slots, log_level, allowed_hosts, cors_origins,
           auth)


@click.command()
@_options
def webserver(home: Path | None, host: str, port: int, worker_slots: int, log_level: str, allowed_hosts: str,
              cors_origins: str, auth: bool | None, access_log: bool) -> None:
    """Only the HTTP API (executions it starts run in this process)."""
    _access_log(access_log)
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
                    "Only schedules, backfills and plugin triggers (their executions run in this process).")
executor = _no_api("executor", ("executor",),
                   "Only the executor: runs executions and takes over those whose process died.")
worker = _no_api("worker", ("executor",),
                 "Same as `tiercel executor`: in Tiercel one process both resolves flows and runs tasks.")
