"""`tiercel plugins list|info|install|upgrade|uninstall`: what is installed, what failed to load, each
component's docs; installing by short name through the registry index (plugins_install.py)."""

from __future__ import annotations

import json
from typing import Any

import click


@click.group()
def plugins() -> None:
    """List, install, upgrade and uninstall plugins; show component docs."""


def _add_install_commands() -> None:
    from tiercel.cli.plugins_install import install, uninstall, upgrade

    for command in (install, upgrade, uninstall):
        plugins.add_command(command)


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per plugin distribution).")
def list_plugins(as_json: bool) -> None:
    """Every installed plugin: version, component types by kind, load errors."""
    from tiercel.plugins import get_registry

    registry = get_registry()
    infos = sorted(registry.plugins.values(), key=lambda p: (p.name != "tiercel", p.name))
    if as_json:
        click.echo(json.dumps([p.to_json() for p in infos], indent=2))
        return
    for plugin in infos:
        status = f"  SKIPPED: {plugin.skipped}" if plugin.skipped else ("  ERROR" if plugin.errors else "")
        click.echo(click.style(f"{plugin.name} {plugin.version}", bold=True) + f"  ({plugin.entry_point} = {plugin.module}){status}")
        for kind, types in plugin.to_json()["components"].items():
            if types:
                click.echo(f"  {kind}s: {', '.join(types)}")
        for error in plugin.errors:
            click.echo(click.style(f"  error: {error}", fg="red"))


def _type_text(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        parts = [_type_text(s) for s in schema["anyOf"] if s.get("$ref") != "#/definitions/expression"]
        return " | ".join(dict.fromkeys(p for p in parts if p))
    if "enum" in schema:
        return " | ".join(map(str, schema["enum"]))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type_text(schema.get('items', {}))}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map[{_type_text(schema['additionalProperties'])}]"
    if schema.get("format") == "duration":
        return "duration"
    return str(kind)


@plugins.command("info")
@click.argument("type_name", metavar="TYPE")
@click.option("--json", "as_json", is_flag=True, help="Print the component's JSON Schema.")
def info(type_name: str, as_json: bool) -> None:
    """Documentation, properties and examples of one task, trigger, runner or storage type."""
    import inspect

    from tiercel.plugins import KINDS, get_registry

    registry = get_registry()
    component = registry.find(type_name)
    if component is None:
        hints = [h for h in (registry.suggest(k, type_name) for k in KINDS) if h]
        hint = f" (did you mean {hints[0]}?)" if hints else ""
        raise click.ClickException(f"unknown type `{type_name}`{hint}; see `tiercel plugins list`")
    cls = component.cls
    from tiercel.flow.schema import _Generator

    schema = cls.model_json_schema(mode="validation", schema_generator=_Generator)
    if as_json:
        click.echo(json.dumps(schema, indent=2))
        return
    click.echo(click.style(cls.type, bold=True) + f"  ({component.kind}, {component.dist} {component.version})")
    if cls.aliases:
        click.echo(f"aliases: {', '.join(cls.aliases)}")
    click.echo()
    click.echo(inspect.cleandoc(cls.__doc__ or "(no documentation)"))
    click.echo()
    click.echo(click.style("Properties", bold=True))
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        line = f"  {name}: {_type_text(prop)}"
        if name in required:
            line += "  (required)"
        elif "default" in prop and prop["default"] not in (None, [], {}):
            line += f"  = {json.dumps(prop['default'])}"
        click.echo(line)
        if prop.get("description"):
            click.echo(f"      {prop['description']}")
    for example in cls.examples:
        click.echo()
        click.echo(click.style(f"Example: {example.title}", bold=True))
        click.echo(example.flow.rstrip())


_add_install_commands()
