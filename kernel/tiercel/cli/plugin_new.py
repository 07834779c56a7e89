"""`tiercel plugin new`: scaffold a plugin from the cookiecutter template bundled with the kernel.

The template is plugin-template/ in the repository; the wheel carries a copy at
tiercel/_template (hatch force-include), so this works from an installed kernel too.
"""

from __future__ import annotations

import logging
import re
import sys
import tempfile
from pathlib import Path

import click


def template_dir() -> Path:
    """The bundled template (wheel install), else the repository's (source checkout, editable install)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_template", package.parents[1] / "plugin-template"):
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    raise click.ClickException("the plugin template is missing from this installation of tiercel; reinstall it")


@click.group()
def plugin() -> None:
    """Scaffold a new plugin from the template."""


@plugin.command("new")
@click.argument("name", required=False)
@click.option("--description", help="One-line description of the plugin.")
@click.option("--no-input", is_flag=True, help="Ask nothing: take NAME (default `hello`) and the default description. "
              "Implied when NAME is given or there is no terminal.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to create the tiercel-<name> folder.")
@click.option("--force", is_flag=True, help="Overwrite files of an existing folder.")
def new(name: str | None, description: str | None, no_input: bool, output_dir: Path, force: bool) -> None:
    """Create tiercel-NAME/: a task, a polling trigger, their tests, a conformance test, README, CHANGELOG, CI."""
    from cookiecutter.exceptions import CookiecutterException, FailedHookException, OutputDirExistsException
    from cookiecutter.main import cookiecutter

    if name is not None and not re.fullmatch(r"[a-z][a-z0-9]*", name):
        raise click.ClickException(f"invalid plugin name {name!r}: use lowercase letters and digits, starting with "
                                   f"a letter (e.g. `weather`); the distribution becomes tiercel-<name>")
    extra = {k: v for k, v in (("plugin_name", name), ("description", description)) if v}
    no_input = no_input or name is not None or not sys.stdin.isatty()  # prompt only a person, only for what is missing
    logging.getLogger("cookiecutter").setLevel(logging.CRITICAL)  # its tracebacks; our errors say it all
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tiercel-cookiecutter-") as tmp:
        config = Path(tmp) / "config.yaml"  # keep cookiecutter's replay files out of the user's home
        config.write_text(f"cookiecutters_dir: {tmp}/templates\nreplay_dir: {tmp}/replay\n")
        try:
            created = Path(cookiecutter(str(template_dir()), no_input=no_input, extra_context=extra,
                                        output_dir=str(output_dir), overwrite_if_exists=force, config_file=str(config)))
        except OutputDirExistsException as exc:
            raise click.ClickException(f"{str(exc).removeprefix('Error: ')}; choose another name or pass --force") from None
        except FailedHookException:
            raise click.ClickException("invalid plugin name: use lowercase letters and digits, starting with a "
                                       "letter (e.g. `weather`)") from None
        except CookiecutterException as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"created {created}")
    dist = Path(__file__).resolve().parents[3] / "dist"  # a checkout's scripts/dist output, when there is one
    links = f"--find-links {dist} " if dist.is_dir() else "--find-links DIST "
    click.echo(f"next: pip install {links}-e '{created}[test]' && (cd {created} && pytest) && "
               f"tiercel registry grade {created.name}")
    if not dist.is_dir():
        click.echo("  (DIST: the folder of tiercel's wheels, made by `scripts/dist` in a Tiercel checkout)")
