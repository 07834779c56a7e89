"""Serving the web UI: `/` redirects to it, deep links reload to the app, a strict CSP, a clear page
when the UI was never built, and the wheel ships the built files (no Node at install)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tiercel.server.ui import ui_routes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def built():
    """The UI is built (scripts/build-ui): else skip, or fail under CI=true."""
    if not (ROOT / "kernel" / "tiercel" / "ui" / "static" / "index.html").is_file():
        message = "the web UI is not built (run scripts/build-ui)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def test_root_redirects_and_deep_links_answer_the_app(built, server):
    with httpx.Client(base_url=server.url) as client:
        root = client.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/ui/"
        deep = client.get("/ui/executions/0123456789abcdef")
        assert deep.status_code == 200 and '<div id="app">' in deep.text
        csp = deep.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-eval" not in csp
        assert deep.headers["cache-control"] == "no-cache"
        asset = next(a for a in (ROOT / "kernel/tiercel/ui/static/assets").iterdir() if a.suffix == ".js")
        served = client.get(f"/ui/assets/{asset.name}")
        assert served.status_code == 200 and "immutable" in served.headers["cache-control"]
        assert client.get("/ui/assets/gone-1234.js").status_code == 404  # a stale chunk is not index.html
        assert "root:" not in client.get("/ui/%2e%2e/%2e%2e/etc/passwd").text


def test_an_unbuilt_checkout_says_how_to_build(tmp_path):
    with TestClient(Starlette(routes=ui_routes(tmp_path / "static"))) as client:
        r = client.get("/ui/flows")
    assert r.status_code == 503
    assert "UI not built" in r.text and "scripts/build-ui" in r.text


@pytest.mark.slow
def test_the_wheel_ships_the_built_ui(built, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("tiercel-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "tiercel/ui/static/index.html" in names
    assert any(n.startswith("tiercel/ui/static/assets/") and n.endswith(".js") for n in names)
    assert any(n.startswith("tiercel/server/ui.py") for n in names)
