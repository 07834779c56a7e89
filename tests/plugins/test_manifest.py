"""The plugin manifest: a process knows every installed type without importing the plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tiercel.plugins import _installed, _manifest_path, discover


def _fake_plugin(root: Path, body: str) -> None:
    """A plugin distribution on *root*: a package with a task and its dist-info entry point."""
    (root / "tiercel_fakeplug").mkdir(parents=True, exist_ok=True)
    (root / "tiercel_fakeplug" / "__init__.py").write_text("")
    (root / "tiercel_fakeplug" / "plugin.py").write_text(textwrap.dedent(body))
    info = root / "tiercel_fakeplug-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiercel-fakeplug\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[tiercel]\nfakeplug = tiercel_fakeplug.plugin\n")


PLUGIN = """
    import tiercel

    class Hello(tiercel.Task):
        \"\"\"Say hello.\"\"\"
        type = "fakeplug.Hello"

    @tiercel.hookimpl
    def register_tasks(register):
        register(Hello)
"""


def _run(code: str, root: Path, cache: Path) -> str:
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "TIERCEL_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout


LIST = ("import sys; from tiercel.plugins import get_registry; r = get_registry(); "
        "print([t for t in r.types('task') if t.startswith('fakeplug.')][0], 'tiercel_fakeplug.plugin' in sys.modules)")


def test_second_process_reads_the_manifest_and_imports_a_plugin_only_when_used(tmp_path):
    _fake_plugin(tmp_path / "site", PLUGIN)
    first = _run(LIST, tmp_path / "site", tmp_path / "cache")
    assert first.split() == ["fakeplug.Hello", "True"]
    assert list((tmp_path / "cache" / "tiercel").glob("registry-*.json"))
    code = ("import sys; from tiercel.plugins import get_registry; r = get_registry(); "
            "print(r.get('task', 'fakeplug.Hello').dist, 'tiercel_fakeplug.plugin' in sys.modules, "
            "r.get('task', 'fakeplug.Hello').cls.type)")
    assert _run(code, tmp_path / "site", tmp_path / "cache").split() == ["tiercel-fakeplug", "False", "fakeplug.Hello"]


def test_editing_a_plugin_is_seen_by_the_next_process(tmp_path):
    _fake_plugin(tmp_path / "site", PLUGIN)
    _run(LIST, tmp_path / "site", tmp_path / "cache")
    _fake_plugin(tmp_path / "site", PLUGIN.replace("fakeplug.Hello", "fakeplug.Renamed"))
    assert _run(LIST, tmp_path / "site", tmp_path / "cache").split()[0] == "fakeplug.Renamed"


def test_a_plugin_that_fails_to_load_is_never_cached(tmp_path):
    _fake_plugin(tmp_path / "site", "import a_library_that_is_not_installed\n")
    code = "from tiercel.plugins import get_registry; print(get_registry().plugins['tiercel-fakeplug'].errors[0])"
    assert "cannot import" in _run(code, tmp_path / "site", tmp_path / "cache")
    assert not list((tmp_path / "cache" / "tiercel").glob("registry-*.json"))


def test_the_manifest_key_follows_the_allowlist(monkeypatch, tmp_path):
    monkeypatch.setenv("TIERCEL_CACHE_DIR", str(tmp_path))
    everything = _manifest_path(_installed())
    monkeypatch.setenv("TIERCEL_PLUGINS", "")
    assert _manifest_path(_installed()) != everything
    assert discover().types("task") == sorted(t for t in discover().types("task") if t.startswith("core."))


def test_installed_entry_points_are_read_without_importlib_metadata():
    from importlib.metadata import entry_points

    expected = sorted((ep.name, ep.value, ep.dist.name, ep.dist.version) for ep in entry_points(group="tiercel"))
    assert _installed() == expected
