"""The `tiercel` command: a click group whose subcommands import only when used.

Each entry maps a command name to ``module:attribute``; keeping imports lazy keeps
``tiercel --help`` well under 0.15 s.
"""

from __future__ import annotations

import importlib

import click

from tiercel import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("tiercel.cli.validate:validate", "Check flow files: every error with file, line, task and property."),
    "schema": ("tiercel.cli.validate:schema", "Print the JSON Schema of a flow, for editors."),
    "plugins": ("tiercel.cli.plugins:plugins", "List installed plugins and show component docs."),
    "run": ("tiercel.cli.run:run", "Run a flow to completion on the embedded backend."),
    "executions": ("tiercel.cli.executions:executions", "List, show, restart, replay, kill or resume executions."),
    "flows": ("tiercel.cli.flows:flows", "Deploy, list and delete flows."),
    "server": ("tiercel.cli.server:server", "Start API, scheduler, executor and worker in one process."),
    "executor": ("tiercel.cli.server:executor", "Run only the executor."),
    "worker": ("tiercel.cli.server:worker", "Run only a worker."),
    "scheduler": ("tiercel.cli.server:scheduler", "Run only the scheduler."),
    "webserver": ("tiercel.cli.server:webserver", "Run only the HTTP API."),
    "triggers": ("tiercel.cli.triggers:triggers", "List triggers, enable or disable them, backfill schedules."),
    "plugin": ("tiercel.cli.plugin_new:plugin", "Scaffold a new plugin from the template."),
    "registry": ("tiercel_registry.cli:registry", "Grade plugins and build the registry index (tiercel-registry)."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target[0].partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):

                @click.command(name=name, help=target[1])
                def unavailable() -> None:
                    raise click.ClickException(f"`tiercel {name}` is not available: {exc.name} is not installed")

                return unavailable
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in sorted(COMMANDS)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tiercel")
def cli() -> None:
    """Tiercel: declarative YAML flows, triggers and tasks in any language."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
