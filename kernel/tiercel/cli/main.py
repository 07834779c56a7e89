"""The `tiercel` command: a click group whose subcommands import only when used.

Each entry maps a command name to ``module:attribute``; keeping imports lazy keeps
``tiercel --help`` well under 0.15 s. Plugins add commands through the
``register_commands`` hook (``tiercel registry`` comes from the tiercel-registry
distribution that way); they are listed from the plugin manifest, without importing them.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from tiercel import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("tiercel.cli.validate:validate", "Check flow files: every error with file, line, task and property."),
    "schema": ("tiercel.cli.validate:schema", "Print the JSON Schema of a flow, for editors."),
    "plugins": ("tiercel.cli.plugins:plugins", "List, install, upgrade and uninstall plugins; show component docs."),
    "run": ("tiercel.cli.run:run", "Run a flow to completion on the embedded backend."),
    "executions": ("tiercel.cli.executions:executions", "List, show, restart, replay, kill or resume executions."),
    "flows": ("tiercel.cli.flows:flows", "Deploy, list and delete flows."),
    "server": ("tiercel.cli.server:server", "Start API, scheduler, executor and worker in one process."),
    "executor": ("tiercel.cli.server:executor", "Run only the executor."),
    "worker": ("tiercel.cli.server:worker", "Run only a worker."),
    "scheduler": ("tiercel.cli.server:scheduler", "Run only the scheduler."),
    "webserver": ("tiercel.cli.server:webserver", "Run only the HTTP API."),
    "cluster": ("tiercel.cli.cluster:cluster", "Show the processes sharing the backend and the job queues."),
    "triggers": ("tiercel.cli.triggers:triggers", "List triggers, enable or disable them, backfill schedules."),
    "plugin": ("tiercel.cli.plugin_new:plugin", "Scaffold a new plugin from the template."),
    "users": ("tiercel.cli.auth:users", "Add, list, remove users and set their passwords."),
    "tokens": ("tiercel.cli.auth:tokens", "Create, list and revoke API tokens."),
    "audit": ("tiercel.cli.auth:audit", "Show who changed what through the API, when and from where."),
    "secrets": ("tiercel.cli.secrets:secrets", "Set, list and delete secrets, encrypted in the backend."),
    "kv": ("tiercel.cli.kv:kv", "Get, set, list and delete values of a namespace's key/value store."),
    "namespace": ("tiercel.cli.namespace:namespace", "Namespace files: upload, list, download and delete."),
    "db": ("tiercel.cli.db:db", "Upgrade the database schema (Alembic) or show its revision."),
    "config": ("tiercel.cli.config:config", "Show the effective settings (environment, tiercel.yaml), secrets masked."),
    "test": ("tiercel.cli.test:test", "Run flow unit tests (*.test.yaml): fixtures, assertions, JUnit XML."),
    "init": ("tiercel.cli.project:init", "Create a project: a flow and its test, editor schema, .gitignore, README."),
    "dev": ("tiercel.cli.project:dev", "The server on a project, flows redeployed as you save them."),
    "completion": ("tiercel.cli.project:completion", "Print the shell completion script (bash, zsh, fish)."),
}


def _plugin_commands() -> dict[str, Any]:
    """Commands contributed by installed plugins (``ExtensionInfo`` by name), from the manifest."""
    from tiercel.plugins import get_registry

    return get_registry().extensions("command")


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *_plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            info = _plugin_commands().get(name)
            return info.obj if info is not None else None
        module, _, attr = target[0].partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            missing = exc.name
            if missing and module.startswith(missing):

                @click.command(name=name, help=target[1])
                def unavailable() -> None:
                    raise click.ClickException(f"`tiercel {name}` is not available: {missing} is not installed")

                return unavailable
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in sorted(COMMANDS)])
        plugins = _plugin_commands()
        if plugins:
            with formatter.section("Commands from plugins"):
                formatter.write_dl([(name, f"{info.summary} ({info.dist})") for name, info in sorted(plugins.items())])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tiercel")
def cli() -> None:
    """Tiercel: declarative YAML flows, triggers and tasks in any language.

    Settings come from the environment (TIERCEL_*) and the configuration file tiercel.yaml
    (TIERCEL_CONFIG, else in the home): `tiercel config show` prints them."""


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """A warning as one line for the user, never the library source line it was raised from."""
    click.echo(f"warning: {message}", err=True)


def main() -> None:
    import warnings

    warnings.showwarning = _show_warning
    from tiercel import config

    try:
        config.export()
    except config.ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from None
    from tiercel.backend import SchemaMismatch, mask_url

    try:
        cli(prog_name="tiercel")  # also under `python -m`: completion answers to _TIERCEL_COMPLETE
    except (SchemaMismatch, ConnectionError) as exc:  # the message names both revisions and the command to run
        click.echo(f"Error: {mask_url(str(exc))}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
