"""Grade an installed plugin distribution: packaging checks, then every component's conformance checks.

The conformance checks run in a pytest subprocess, first over the plugin's own conformance
tests (so their fixtures start the services the examples need), then, for components those
tests do not cover, over a default suite. The report holds no timestamps or temporary
paths and is sorted, so grading twice gives the same report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tiercel_registry import packaging
from tiercel_registry.checks import CHECKS, DESCRIPTIONS, CheckFailed, CheckSkipped

#: Lowest score of each grade; a plugin that does not load gets F whatever its score.
GRADES = (("A", 100), ("B", 90), ("C", 75), ("D", 50), ("F", 0))
BUNDLED = {"tiercel": Path(__file__).parent / "suites" / "core.py"}
REPORT_VERSION = 1
TESTS_DESCRIPTION = "its own conformance tests run (tests/test_conformance.py)"


def letter(score: int, loads: bool = True) -> str:
    if not loads:
        return "F"
    return next(grade for grade, low in GRADES if score >= low)


def _scrub(message: str) -> str:
    """Drop what differs between two runs: temporary paths and process ids."""
    tmp = re.escape(tempfile.gettempdir().rstrip("/"))
    message = re.sub(tmp + r"/[^\s'\"`,;)\]]*", "<tmp>", message)
    return re.sub(r"\bpid \d+", "pid N", message)


def own_tests(dist: Any) -> Path | None:
    """The plugin's conformance tests: tests/test_conformance.py in its source folder, or one the registry ships."""
    source = packaging.source_dir(dist)
    if source is not None:
        for candidate in (source / "tests" / "test_conformance.py", source / "test_conformance.py"):
            if candidate.is_file():
                return candidate
    return BUNDLED.get(dist.metadata["Name"])


def _pytest(files: list[Path], rootdir: Path, report: Path, extra_path: list[str]) -> tuple[list[dict], str, int]:
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([*extra_path, *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(rootdir),
           f"--tiercel-report={report}", "--tiercel-exit", *map(str, files)]
    proc = subprocess.run(cmd, cwd=rootdir, env=env, capture_output=True, text=True, timeout=1800)
    rows = json.loads(report.read_text()) if report.exists() else []
    return rows, (proc.stdout + proc.stderr)[-3000:], proc.returncode


def _default_suite(folder: Path, dist: str, types: list[str]) -> Path:
    (folder / "pytest.ini").write_text("[pytest]\naddopts = --import-mode=importlib\n")
    module = folder / "test_default_conformance.py"
    module.write_text(
        '"""The default conformance suite, for components without conformance tests of their own."""\n'
        "from tiercel_registry import conformance_suite\n\n"
        f"globals().update({{name: cls for name, cls in conformance_suite({dist!r}).items()\n"
        f"                   if cls.component.type in {sorted(types)!r}}})\n")
    return module


def grade(dist_name: str, tests: Path | None = None, extra_path: list[str] | None = None) -> dict[str, Any]:
    """Grade the installed distribution *dist_name*; return the report (see docs/plugins/grading.md)."""
    from tiercel import API_VERSION

    extra_path = [str(Path(p).resolve()) for p in extra_path or []]
    for entry in reversed(extra_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    loaded = packaging.load(dist_name)
    name = loaded.dist.metadata["Name"]
    pack = []
    for check in packaging.CHECKS:
        try:
            packaging.run_packaging_check(check, dist_name)
            pack.append({"check": check, "status": "passed", "message": ""})
        except CheckFailed as exc:
            pack.append({"check": check, "status": "failed", "message": _scrub(str(exc))})
        except CheckSkipped as exc:
            pack.append({"check": check, "status": "skipped", "message": _scrub(str(exc))})
    components = loaded.components
    tests_row = {"check": "conformance_tests", "status": "skipped",
                 "message": "no tests/test_conformance.py: the default suite ran, without knobs"}
    results: dict[tuple[str, str], dict[str, str]] = {}
    sources: dict[str, str] = {}
    output = ""
    if components:
        with tempfile.TemporaryDirectory(prefix="tiercel-grade-") as tmp:
            folder = Path(tmp)
            own = tests or own_tests(loaded.dist)
            if own is not None:
                own = Path(own).resolve()
                source = packaging.source_dir(loaded.dist)
                if own in BUNDLED.values():
                    root, label = own.parent, f"{own.name} bundled with tiercel-registry"
                elif source is not None and own.is_relative_to(source):
                    root, label = source, own.relative_to(source).as_posix()
                else:
                    root, label = own.parent, own.name
                rows, output, code = _pytest([own], root, folder / "own.json", extra_path)
                if code in (0, 1) and rows:  # 1: some checks failed, reported per check
                    tests_row = {"check": "conformance_tests", "status": "passed", "message": ""}
                else:
                    tests_row = {"check": "conformance_tests", "status": "failed",
                                 "message": f"{label} did not run (pytest exit status {code}):\n{output.strip()}"}
                for row in rows:
                    results[(row["type"], row["check"])] = row
                    sources[row["type"]] = label
            missing = [c.type for c in components if c.type not in sources]
            if missing:
                rows, out, _ = _pytest([_default_suite(folder, name, missing)], folder, folder / "default.json", extra_path)
                output = output or out
                for row in rows:
                    if row["type"] in missing:
                        results[(row["type"], row["check"])] = row
                        sources[row["type"]] = "default suite"
    pack.append({**tests_row, "message": _scrub(tests_row["message"])})
    report_components = []
    for info in components:
        checks = []
        for check in CHECKS[info.kind]:
            row = results.get((info.type, check))
            if row is None:
                row = {"status": "failed", "message": "the check did not run; pytest said:\n" + output.strip()}
            checks.append({"check": check, "status": row["status"], "message": _scrub(row["message"])})
        report_components.append({"type": info.type, "kind": info.kind, "summary": info.summary,
                                  "suite": sources.get(info.type, "none"), "checks": checks})
    every = pack + [c for comp in report_components for c in comp["checks"]]
    passed = sum(c["status"] == "passed" for c in every)
    failed = sum(c["status"] == "failed" for c in every)
    score = 100 * passed // (passed + failed) if passed + failed else 0
    loads = next(c["status"] == "passed" for c in pack if c["check"] == "loads") and bool(components)
    return {
        "report": REPORT_VERSION,
        "distribution": name,
        "version": loaded.dist.version,
        "api": loaded.plugin.api or (getattr(loaded.module, "TIERCEL_API", None) if loaded.module else None),
        "kernelApi": API_VERSION,
        "grade": letter(score, loads),
        "score": score,
        "passed": passed,
        "failed": failed,
        "skipped": sum(c["status"] == "skipped" for c in every),
        "packaging": pack,
        "components": report_components,
    }


def render_text(report: dict[str, Any], verbose: bool = False) -> str:
    """The report for a terminal: one line per check, failures with their reasons."""
    mark = {"passed": "PASS", "failed": "FAIL", "skipped": "skip"}
    lines = [f"{report['distribution']} {report['version']}  (kernel API {report['api']})", "", "packaging"]

    def add(check: str, row: dict[str, Any], what: str) -> None:
        lines.append(f"  {mark[row['status']]}  {check:<20} {what}")
        if row["message"] and (row["status"] == "failed" or verbose):
            lines.extend(f"        {line}" for line in row["message"].splitlines())

    for row in report["packaging"]:
        add(row["check"], row, packaging.DESCRIPTIONS.get(row["check"], TESTS_DESCRIPTION))
    for comp in report["components"]:
        lines += ["", f"{comp['type']}  ({comp['kind']}; {comp['suite']})"]
        for row in comp["checks"]:
            add(row["check"], row, DESCRIPTIONS[row["check"]])
    lines += ["", f"{report['passed']} passed, {report['failed']} failed, {report['skipped']} skipped",
              f"score {report['score']}/100  grade {report['grade']}"]
    return "\n".join(lines)
