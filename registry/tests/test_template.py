"""The plugin template is itself tested: rendered with defaults, installed into a fresh venv, it
passes its own tests, shows in `tiercel plugins list`, runs its flow and gets grade A."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tiercel.testing.harness import tiercel

REPO = Path(__file__).resolve().parents[2]
EXPECTED_FILES = {
    ".github/workflows/test.yml", "CHANGELOG.md", "README.md", "pyproject.toml",
    "tests/test_conformance.py", "tests/test_plugin.py",
    "tiercel_hello/__init__.py", "tiercel_hello/plugin.py", "tiercel_hello/tasks.py", "tiercel_hello/triggers.py",
    "tiercel_hello/flows/greet.yaml", "tiercel_hello/flows/new_file.yaml",
}


def test_plugin_new_renders_the_template_with_defaults(tmp_path):
    proc = tiercel("plugin", "new", "--no-input", "--output-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "tiercel-hello"
    assert {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} == EXPECTED_FILES
    task = (root / "tiercel_hello" / "tasks.py").read_text()
    assert 'type: ClassVar[str] = "hello.Greet"' in task
    assert len(task.splitlines()) <= 25  # the smallest plugin stays small
    assert 'hello = "tiercel_hello.plugin"' in (root / "pyproject.toml").read_text()
    assert "${{ matrix.python }}" in (root / ".github" / "workflows" / "test.yml").read_text()


def test_plugin_new_takes_a_name_and_refuses_a_bad_one(tmp_path):
    proc = tiercel("plugin", "new", "weather", "--description", "Weather data.", "-o", str(tmp_path))  # no prompt
    assert proc.returncode == 0, proc.stderr
    assert '"weather.NewFile"' in (tmp_path / "tiercel-weather" / "tiercel_weather" / "triggers.py").read_text()
    assert "Weather data." in (tmp_path / "tiercel-weather" / "README.md").read_text()
    again = tiercel("plugin", "new", "weather", "--no-input", "-o", str(tmp_path))
    assert again.returncode == 1 and "already exists; choose another name or pass --force" in again.stderr
    bad = tiercel("plugin", "new", "Bad-Name", "--no-input", "-o", str(tmp_path))
    assert bad.returncode == 1 and "invalid plugin name 'Bad-Name'" in bad.stderr


def _fresh_venv(root: Path) -> Path:
    """A venv with the kernel and the registry installed from this repository (editable, no download of
    their dependencies: those come from the running environment, minus every Tiercel distribution)."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    shared = root / "shared-deps"
    shared.mkdir()
    skip = ("tiercel", "_editable_impl_", "__editable__", "pip", "setuptools", "_distutils_hack", "__pycache__")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(skip) and entry.suffix != ".pth":
            (shared / entry.name).symlink_to(entry)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "shared-deps.pth").write_text(str(shared) + "\n")
    return python


def _run(*args, cwd=None, env=None):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_rendered_plugin_installs_runs_passes_its_tests_and_gets_an_a(tmp_path):
    python = _fresh_venv(tmp_path)
    bin_dir = python.parent
    # The kernel as a wheel: `tiercel plugin new` must find the template bundled in it, outside the repository.
    _run(python, "-m", "pip", "wheel", "-q", "--no-deps", REPO, "-w", tmp_path / "wheels")
    _run(python, "-m", "pip", "install", "-q", "--no-deps", *sorted((tmp_path / "wheels").glob("tiercel-*.whl")),
         "-e", REPO / "registry")
    _run(bin_dir / "tiercel", "plugin", "new", "--no-input", "-o", tmp_path / "out", cwd=tmp_path)
    plugin = tmp_path / "out" / "tiercel-hello"
    _run(python, "-m", "pip", "install", "-q", "--no-deps", plugin)  # a regular (non-editable) install

    listed = json.loads(_run(bin_dir / "tiercel", "plugins", "list", "--json").stdout)
    hello = next(p for p in listed if p["name"] == "tiercel-hello")
    assert hello["components"]["task"] == ["hello.Greet"] and hello["components"]["trigger"] == ["hello.NewFile"]
    assert hello["errors"] == [] and hello["skipped"] is None

    home = tmp_path / "home"
    ran = _run(bin_dir / "tiercel", "run", plugin / "tiercel_hello" / "flows" / "greet.yaml", "--json",
               env={"TIERCEL_HOME": str(home)})
    assert json.loads(ran.stdout)["state"] == "SUCCESS"

    tests = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=plugin)
    assert " passed" in tests.stdout and "failed" not in tests.stdout

    report = json.loads(_run(bin_dir / "tiercel", "registry", "grade", "tiercel-hello", "--json", "--out", "-",
                             cwd=tmp_path).stdout)
    assert (report["grade"], report["failed"]) == ("A", 0), json.dumps(report, indent=2)
    assert {c["suite"] for c in report["components"]} == {"tests/test_conformance.py"}
