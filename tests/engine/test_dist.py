"""Set-up anywhere: `scripts/dist` builds wheels that pip resolves on a machine without this checkout — a
plugin with the kernel from dist/, and a generated plugin's test extras (tiercel-registry) the same way."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

from tiercel.testing.harness import tiercel

ROOT = Path(__file__).resolve().parents[2]


def test_dist_wheels_resolve_a_plugin_and_a_generated_plugins_test_extras(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run([str(ROOT / "scripts/dist"), str(dist), "./", "./registry", "./plugins/tiercel-http"],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    names = sorted(p.name.split("-")[0] for p in dist.glob("*.whl"))
    assert names == ["tiercel", "tiercel_http", "tiercel_registry"], names
    made = tiercel("plugin", "new", "weather", "--description", "Weather tasks", "-o", str(tmp_path / "plugins"),
                   cwd=tmp_path, env={"TIERCEL_HOME": str(tmp_path / "home")})
    assert made.returncode == 0, made.stderr
    assert "--find-links" in made.stdout
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=True)
    report = tmp_path / "report.json"
    resolved = subprocess.run([str(fresh / "bin/python"), "-m", "pip", "install", "--quiet", "--dry-run",
                               "--find-links", str(dist), "--report", str(report), "tiercel-http",
                               "-e", f"{tmp_path / 'plugins/tiercel-weather'}[test]"],
                              capture_output=True, text=True, timeout=900)
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    chosen = {item["metadata"]["name"]: item["download_info"]["url"] for item in json.loads(report.read_text())["install"]}
    for name in ("tiercel", "tiercel-http", "tiercel-registry"):
        assert chosen[name].startswith(dist.as_uri()), (name, chosen.get(name))
    assert "tiercel-weather" in chosen and "pytest" in chosen
