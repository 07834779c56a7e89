"""Browser tests of the web UI: Playwright drives Debian's chromium (never a downloaded browser)
against a real `tiercel server` subprocess serving the built UI.

Every page a test opens is watched: a console error, a failed request, or a request to any host
but the server fails the test. Screenshots go to tests/ui/artifacts (a CI artefact, git-ignored).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tiercel.testing.harness import TiercelServer

# The machine running the suite may be busy: wait on conditions, long enough not to flake.
expect.set_options(timeout=15_000)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STATIC = Path(__file__).resolve().parents[2] / "kernel" / "tiercel" / "ui" / "static" / "index.html"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return "chromium is not installed (scripts/services/chromium.sh installs it)"
    if not STATIC.is_file():
        return "the web UI is not built (run scripts/build-ui)"
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    problem = _missing()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = TiercelServer(tmp_path_factory.mktemp("ui") / "home").start()
    yield proc
    proc.stop()


def pytest_configure(config):
    config.addinivalue_line("markers", "network_drop: the test cuts the network: requests failing offline are expected")
    config.addinivalue_line("markers", "refused(status, path): the test expects the server to answer *status* on *path*")


@pytest.fixture
def ui(page, server, request):
    """The page, watched: after the test, no console error, no failed request, nothing but 127.0.0.1."""
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: "/follow" not in r.url and problems.append(f"failed: {r.url} {r.failure}"))
    page.on("request", lambda r: r.url.startswith((server.url, "data:")) or problems.append(f"off-host: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    page.set_default_timeout(15_000)
    yield page
    if request.node.get_closest_marker("network_drop"):
        problems = [p for p in problems if "ERR_INTERNET_DISCONNECTED" not in p]
    refused = request.node.get_closest_marker("refused")
    if refused:  # the answer the test provoked, and the console line chromium prints for it
        status, path = refused.args
        problems = [p for p in problems if not (p == f"HTTP {status}: {server.url}{path}"
                                                or p.startswith(f"console: Failed to load resource: the server responded with a status of {status}"))]
    assert not problems, "\n".join(problems)


@pytest.fixture
def shot():
    """``shot(page, name)``: a screenshot into tests/ui/artifacts (docs/user/ui.md shows some of them)."""

    def take(page, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    return take
