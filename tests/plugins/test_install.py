"""`tiercel plugins install|upgrade|uninstall`, run as a subprocess in a throwaway virtual environment.

The throwaway venv sees the project's .venv through symlinks (everything but tiercel-fs), so pip
runs for real (`sys.executable -m pip`) without ever installing into or removing from the .venv
that Tiercel runs in; the tests assert that .venv is unchanged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs/operations/install.md"
SITE = Path(sysconfig.get_paths()["purelib"])
#: tiercel-fs as this checkout has it, and two later releases the tests build from a copy
FS = tomllib.loads((ROOT / "plugins/tiercel-fs/pyproject.toml").read_text())["project"]["version"]
_RELEASE, _PATCH = FS.rsplit(".", 1)
FS1, FS2 = f"{_RELEASE}.{int(_PATCH) + 1}", f"{_RELEASE}.{int(_PATCH) + 2}"


def _is_fs(name: str) -> bool:
    return name.startswith(("tiercel_fs", "_editable_impl_tiercel_fs"))


@pytest.fixture
def throwaway(tmp_path):
    """A venv whose site-packages links every entry of ours except tiercel-fs; its bin has `tiercel`."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    site = Path(subprocess.run([str(env_dir / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for entry in SITE.iterdir():
        if not _is_fs(entry.name) and not (site / entry.name).exists():
            (site / entry.name).symlink_to(entry)
    script = env_dir / "bin/tiercel"
    script.write_text(f"#!{env_dir / 'bin/python'}\nfrom tiercel.cli.main import main\nmain()\n")
    script.chmod(0o755)
    ours = sorted(p.name for p in SITE.iterdir())
    env = {**os.environ, "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "TIERCEL_CACHE_DIR": str(tmp_path / "cache"), "TIERCEL_HOME": str(tmp_path / "home"),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("VIRTUAL_ENV", None)
    yield env_dir, site, env
    assert sorted(p.name for p in SITE.iterdir()) == ours, "the project's .venv changed"
    assert any(_is_fs(p.name) and p.name.endswith(".dist-info") for p in SITE.iterdir())


def _tiercel(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tiercel", *args], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.timeout(120)
def test_the_documented_install_runs_in_a_throwaway_venv(throwaway, tmp_path):
    env_dir, site, env = throwaway
    script = re.search(r"<!-- test: run -->\n```sh\n(.*?)```", DOC.read_text(), re.S).group(1)
    wheels = tmp_path / "wheels"
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env={**env, "WHEELS": str(wheels)},
                         capture_output=True, text=True, timeout=110)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert f"tiercel-fs {FS} · grade A (100/100) · kernel API >=1.0,<2 (this kernel: 1.0)" in lines
    assert f"$ python -m pip install tiercel-fs=={FS} --find-links {wheels} --no-index" in lines
    installed = next(line for line in lines if line.startswith(f"installed tiercel-fs {FS}: "))
    assert "fs.sftp.Upload" in installed and "fs.ftp.Download" in installed
    assert f"tiercel-fs {FS}  (fs = tiercel_fs.plugin)" in lines
    assert lines[-1] == f"uninstalled tiercel-fs {FS}"
    # the install went into the throwaway venv, and the uninstall removed it from there only
    assert not [p for p in site.iterdir() if _is_fs(p.name)]


@pytest.mark.timeout(120)
def test_install_upgrade_and_core_refusal(throwaway, tmp_path):
    env_dir, site, env = throwaway
    wheels = tmp_path / "wheels"
    built = subprocess.run([str(env_dir / "bin/python"), "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--no-build-isolation", str(ROOT / "plugins/tiercel-fs"), "-w", str(wheels)],
                           env=env, capture_output=True, text=True, timeout=100)
    assert built.returncode == 0, built.stderr
    upgrade_missing = _tiercel(env, "plugins", "upgrade", "fs")
    assert upgrade_missing.returncode == 1
    assert "tiercel-fs is not installed; install it with `tiercel plugins install fs`" in upgrade_missing.stderr
    done = _tiercel(env, "plugins", "install", f"tiercel-fs=={FS}", "--no-index", "--find-links", str(wheels))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "tiercel_fs").is_dir() and not (site / "tiercel_fs").is_symlink()
    listed = _tiercel(env, "plugins", "list", "--json")
    fs = next(p for p in json.loads(listed.stdout) if p["name"] == "tiercel-fs")
    assert fs["skipped"] is None and not fs["errors"] and "fs.sftp.Upload" in fs["components"]["task"]
    again = _tiercel(env, "plugins", "install", "fs", "--no-index", "--find-links", str(wheels))
    assert again.returncode == 0 and f"tiercel-fs {FS} is already installed" in again.stdout
    same = _tiercel(env, "plugins", "upgrade", "fs")
    assert same.returncode == 0 and f"tiercel-fs {FS} is already installed and up to date" in same.stdout
    # a newer release in the index: `install` leaves the installed one, `upgrade` installs the index's
    source = tmp_path / "src/tiercel-fs"
    shutil.copytree(ROOT / "plugins/tiercel-fs", source, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    project = source / "pyproject.toml"
    project.write_text(project.read_text().replace(f'version = "{FS}"', f'version = "{FS1}"'))
    built = subprocess.run([str(env_dir / "bin/python"), "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--no-build-isolation", str(source), "-w", str(wheels)],
                           env=env, capture_output=True, text=True, timeout=100)
    assert built.returncode == 0, built.stderr
    index = json.loads((ROOT / "docs/reference/index.json").read_text())
    next(p for p in index["plugins"] if p["name"] == "tiercel-fs")["version"] = f"{FS1}"
    (tmp_path / "index.json").write_text(json.dumps(index))
    newer = {**env, "TIERCEL_PLUGIN_INDEX": str(tmp_path / "index.json")}
    kept = _tiercel(newer, "plugins", "install", "fs", "--no-index", "--find-links", str(wheels))
    assert kept.returncode == 0
    assert f"tiercel-fs {FS} is already installed; `tiercel plugins upgrade fs` installs the index's {FS1}" in kept.stdout
    upgraded = _tiercel(newer, "plugins", "upgrade", "fs", "--no-index", "--find-links", str(wheels))
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert f"installed tiercel-fs {FS1}: " in upgraded.stdout
    back = _tiercel(newer, "plugins", "install", f"fs=={FS}", "--no-index", "--find-links", str(wheels))
    assert back.returncode == 0, back.stdout + back.stderr
    assert "note: the index" in back.stdout and f"installed tiercel-fs {FS}: " in back.stdout
    # a version the index did not grade, built for another kernel API: reported once installed
    project.write_text(project.read_text().replace(f'version = "{FS1}"', f'version = "{FS2}"'))
    plugin = source / "src/tiercel_fs/plugin.py"
    plugin.write_text(plugin.read_text().replace('TIERCEL_API = ">=1.0,<2"', 'TIERCEL_API = ">=2.0,<3"'))
    built = subprocess.run([str(env_dir / "bin/python"), "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--no-build-isolation", str(source), "-w", str(wheels)],
                           env=env, capture_output=True, text=True, timeout=100)
    assert built.returncode == 0, built.stderr
    later = _tiercel(newer, "plugins", "install", f"fs=={FS2}", "--no-index", "--find-links", str(wheels))
    assert later.returncode == 1
    assert (f"tiercel-fs {FS2} installed but does not load: built for kernel API >=2.0,<3, this kernel provides 1.0. "
            "Remove it with `tiercel plugins uninstall fs`") in later.stderr
    for name in ("core", "tiercel"):
        refused = _tiercel(env, "plugins", "uninstall", name)
        assert refused.returncode == 1
        assert "`core` is the built-in core plugin" in refused.stderr and "pip uninstall tiercel" in refused.stderr
    gone = _tiercel(env, "plugins", "uninstall", "tiercel-fs")
    assert gone.returncode == 0 and f"uninstalled tiercel-fs {FS2}" in gone.stdout
    not_there = _tiercel(env, "plugins", "uninstall", "fs")
    assert not_there.returncode == 1 and "tiercel-fs is not installed" in not_there.stderr


def test_an_incompatible_kernel_api_is_refused_before_pip(tmp_path):
    index = json.loads((ROOT / "docs/reference/index.json").read_text())
    kafka = next(p for p in index["plugins"] if p["name"] == "tiercel-kafka")
    kafka["api"] = ">=2.0,<3"
    doctored = tmp_path / "index.json"
    doctored.write_text(json.dumps(index))
    # --find-links to a folder that does not exist: pip would fail loudly if it ran
    out = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "plugins", "install", "kafka", "--index",
                          str(doctored), "--no-index", "--find-links", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "tiercel-kafka 0.1.0 · grade A (100/100) · kernel API >=2.0,<3 (this kernel: 1.0)" in out.stdout
    assert ("tiercel-kafka 0.1.0 is built for kernel API >=2.0,<3 (its TIERCEL_API), but this tiercel 0.1.0 "
            "provides kernel API 1.0; nothing was installed") in out.stderr
    assert "python -m pip" not in out.stdout
    with_env = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "plugins", "upgrade", "tiercel-kafka"],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "TIERCEL_PLUGIN_INDEX": str(doctored)})
    assert with_env.returncode == 1 and "nothing was installed" in with_env.stderr
    kafka["api"] = ">=1.0,<2"
    kafka["requires"] = ["tiercel>=9.0"]  # what `tiercel registry build` records for a pinned kernel version
    doctored.write_text(json.dumps(index))
    pinned = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "plugins", "install", "kafka", "--index",
                             str(doctored)], capture_output=True, text=True, timeout=60)
    assert pinned.returncode == 1
    assert "tiercel-kafka 0.1.0 requires tiercel>=9.0, but this is tiercel 0.1.0; nothing was installed" in pinned.stderr


def test_an_unknown_name_suggests_the_closest(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "plugins", "install", "kafak"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "no plugin `kafak` in the index; did you mean `kafka`?" in out.stderr
    by_type = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "plugins", "install", "kafka.Produce",
                              "--dry-run"], capture_output=True, text=True, timeout=60)
    assert by_type.returncode == 0 and by_type.stdout.startswith("tiercel-kafka 0.1.0 · grade A")
    broken = tmp_path / "index.json"
    broken.write_text("{}")
    bad = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "plugins", "install", "kafka", "--index",
                          str(broken)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "is not a plugin index" in bad.stderr and "tiercel registry build" in bad.stderr


def test_the_registry_index_records_a_pinned_kernel_version(tmp_path):
    from tiercel_registry.build import kernel_requirements

    assert kernel_requirements("tiercel-fs") == []  # `dependencies = ["tiercel", ...]`: nothing to record
    assert kernel_requirements("tiercel-registry") == ["tiercel>=0.1"]  # its own pyproject pins the kernel


def test_a_pip_failure_names_where_pip_looked(throwaway, tmp_path):
    env_dir, site, env = throwaway
    (tmp_path / "empty").mkdir()
    failed = _tiercel(env, "plugins", "install", "fs", "--no-index", "--find-links", str(tmp_path / "empty"))
    assert failed.returncode == 1
    assert f"No matching distribution found for tiercel-fs=={FS}" in failed.stderr
    assert "pip exited with status 1; nothing changed in tiercel's plugins" in failed.stderr
    assert "--index-url/--find-links choose where pip looks" in failed.stderr
    assert not [p for p in site.iterdir() if _is_fs(p.name)]
