"""`tiercel registry grade|build`: grade installed plugins and build the registry index and reference docs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.group()
def registry() -> None:
    """Grade plugins and build the registry index (tiercel-registry)."""


@registry.command()
@click.argument("dist")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the text.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the JSON report (default: <home>/reports/<DIST>-grade.json; `-` for none).")
@click.option("--tests", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The plugin's conformance test file (default: tests/test_conformance.py of its source folder).")
@click.option("--path", "extra_path", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Also look for distributions in this folder (repeatable).")
@click.option("--fail-under", type=click.Choice(["A", "B", "C", "D"]), default=None,
              help="Exit with status 1 when the grade is below this one.")
@click.option("-v", "--verbose", is_flag=True, help="Show why checks were skipped.")
def grade(dist: str, as_json: bool, out: Path | None, tests: Path | None, extra_path: tuple[str, ...],
          fail_under: str | None, verbose: bool) -> None:
    """Grade the installed plugin distribution DIST: each check, a score and a grade.

    Grades: A = every check passed, B >= 90, C >= 75, D >= 50, F below (or the plugin does not load).
    Skipped checks (not applicable, or needing a fixture the conformance tests did not give) do not count.
    """
    from tiercel_registry.grade import GRADES, render_text
    from tiercel_registry.grade import grade as run_grade
    from tiercel_registry.packaging import NotInstalled

    try:
        report = run_grade(dist, tests=tests, extra_path=list(extra_path))
    except NotInstalled as exc:
        raise click.ClickException(str(exc)) from None
    text = json.dumps(report, indent=2) + "\n"
    if out is None:
        from tiercel.home import default_home

        out = default_home() / "reports" / f"{report['distribution']}-grade.json"
    target = out
    if str(target) != "-":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    click.echo(text if as_json else render_text(report, verbose), nl=not as_json)
    if not as_json and str(target) != "-":
        click.echo(f"report written to {target}")
    order = [g for g, _ in GRADES]
    if fail_under and order.index(report["grade"]) > order.index(fail_under):
        sys.exit(1)


@registry.command()
@click.argument("plugins_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for index.json, the grade reports and the reference pages.")
@click.option("--core/--no-core", default=True, help="Include the kernel's core plugin (distribution `tiercel`).")
@click.option("--path", "extra_path", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Also look for distributions in this folder (repeatable).")
def build(plugins_dir: Path, out: Path, core: bool, extra_path: tuple[str, ...]) -> None:
    """Grade every plugin in PLUGINS_DIR and write the registry index and reference docs into --out.

    The plugins must be installed (`pip install -e plugins/tiercel-x`); one that is not is listed
    in the index with the error.
    """
    from tiercel_registry.build import build as run_build

    index = run_build(plugins_dir, out, include_core=core, echo=click.echo, extra_path=list(extra_path))
    click.echo(f"{len(index['plugins'])} plugins; index written to {out / 'index.json'}")
