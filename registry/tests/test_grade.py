"""`tiercel registry grade` and `build` on fixture distributions."""

import json
from pathlib import Path

import pytest

from tiercel.testing.harness import tiercel
from tiercel_registry.build import build
from tiercel_registry.grade import grade, letter

DISTS = Path(__file__).parent / "fixtures" / "dists"


def test_letters():
    assert [letter(s) for s in (100, 99, 90, 89, 75, 50, 49, 0)] == ["A", "B", "B", "C", "C", "D", "F", "F"]
    assert letter(100, loads=False) == "F"


def test_a_good_plugin_gets_an_a_and_the_same_report_twice(dists):
    first = grade("tiercel-good", extra_path=[str(DISTS)])
    assert (first["grade"], first["score"], first["failed"]) == ("A", 100, 0)
    [component] = first["components"]
    assert (component["type"], component["kind"], component["suite"]) == ("good.Hi", "task", "default suite")
    assert {c["check"]: c["status"] for c in component["checks"]}["examples_run"] == "passed"
    assert grade("tiercel-good", extra_path=[str(DISTS)]) == first


def test_grade_cli_prints_each_failure_with_its_fix_and_writes_the_report(tmp_path):
    out = tmp_path / "report.json"
    proc = tiercel("registry", "grade", "tiercel-noapi", "--path", str(DISTS), "--out", str(out), "--fail-under", "A")
    assert proc.returncode == 1, proc.stderr
    assert "FAIL  api" in proc.stdout
    assert 'add `TIERCEL_API = ">=1.0,<2"` to it' in proc.stdout
    assert "grade B" in proc.stdout
    report = json.loads(out.read_text())
    assert report["grade"] == "B" and report["distribution"] == "tiercel-noapi"


def test_a_plugin_that_does_not_load_gets_f(tmp_path):
    proc = tiercel("registry", "grade", "tiercel-broken", "--path", str(DISTS), "--json", home=tmp_path / "home",
                   cwd=tmp_path)
    assert json.loads((tmp_path / "home" / "reports" / "tiercel-broken-grade.json").read_text())["grade"] == "F"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # nothing left in the current directory
    report = json.loads(proc.stdout)
    assert report["grade"] == "F" and report["components"] == []


def test_grade_of_a_missing_distribution_is_a_clear_error():
    proc = tiercel("registry", "grade", "tiercel-nowhere", "--out", "-")
    assert proc.returncode == 1
    assert "distribution `tiercel-nowhere` is not installed" in proc.stderr


def test_build_writes_index_and_reference_pages_reproducibly(dists, tmp_path):
    plugins = tmp_path / "plugins"
    for name in ("tiercel-good", "tiercel-missing"):
        (plugins / name).mkdir(parents=True)
        (plugins / name / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    out = tmp_path / "reference"
    index = build(plugins, out, include_core=False, echo=lambda line: None, extra_path=[str(DISTS)])
    good, missing = index["plugins"]
    assert good == {"name": "tiercel-good", "version": "0.1.0", "api": ">=1.0,<2", "grade": "A", "score": 100,
                    "components": [{"type": "good.Hi", "kind": "task", "summary": "Say hi to someone.",
                                    "page": "tiercel-good/good.Hi.md"}]}
    assert missing["grade"] is None and "not installed" in missing["error"]
    page = (out / "tiercel-good" / "good.Hi.md").read_text()
    assert "| `who` | string | *required* | Who to greet. |" in page
    assert "type: good.Hi" in page and "| its example flows run to SUCCESS | passed |" in page
    files = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    build(plugins, out, include_core=False, echo=lambda line: None, extra_path=[str(DISTS)])
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == files


@pytest.mark.slow
def test_the_core_plugin_gets_the_top_grade():
    report = grade("tiercel")
    failures = [(c["type"], row["check"], row["message"]) for c in report["components"] for row in c["checks"]
                if row["status"] == "failed"] + [row for row in report["packaging"] if row["status"] == "failed"]
    assert report["grade"] == "A", failures
    assert len(report["components"]) >= 25
