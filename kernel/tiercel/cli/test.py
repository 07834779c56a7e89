"""`tiercel test`: run the flow unit tests (``*.test.yaml``) and report like pytest."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--junit-xml",
    "junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a JUnit XML report here (for CI).",
)
@click.option("-k", "keyword", help="Only test cases whose id contains this.")
def test(paths: tuple[Path, ...], junit: Path | None, keyword: str | None) -> None:
    """Run flow unit tests: *.test.yaml files in PATHS (default: the current folder), recursively.

    Each test case runs its flow with the given inputs, trigger and task fixtures, then checks
    its assertions. Exit 1 when a test fails or cannot run."""
    from tiercel.flowtest import CaseResult, TestFileError, collect, junit_xml, load_test_file, run_case

    started = time.monotonic()
    files = collect(list(paths) or [Path(".")])
    if not files:
        click.echo("no test files (*.test.yaml) found", err=True)
        sys.exit(1)
    results: list[CaseResult] = []
    for path in files:
        click.echo(f"{path} ", nl=False)
        try:
            loaded = load_test_file(path)
        except TestFileError as exc:
            results.append(CaseResult(path, "(file)", "error", 0.0, [str(exc)]))
            click.echo("E")
            continue
        for i, case in enumerate(loaded.spec.testCases):
            if keyword and keyword not in case.id:
                continue
            result = run_case(loaded, i)
            results.append(result)
            click.echo({"passed": ".", "failed": "F", "error": "E", "skipped": "s"}[result.outcome], nl=False)
        click.echo("")
    bad = [r for r in results if r.outcome in ("failed", "error")]
    if bad:
        click.echo(click.style(" FAILURES ".center(70, "="), fg="red"))
        for r in bad:
            click.echo(f"{'_' * 5} {r.name} {'_' * 5}")
            for failure in r.failures:
                click.echo(failure)
    seconds = time.monotonic() - started
    counts = [
        f"{n} {word}"
        for word in ("failed", "error", "passed", "skipped")
        if (n := sum(r.outcome == word for r in results))
    ]
    summary = f" {', '.join(counts) or 'no tests ran'} in {seconds:.2f}s "
    click.echo(click.style(summary.center(70, "="), fg="red" if bad else "green"))
    if junit:
        junit.write_text(junit_xml(results, seconds), encoding="utf-8")
    sys.exit(1 if bad or not results else 0)
