"""Web UI figures: bundle sizes, page loads, editor latency and long tasks, topology, 10,000 log lines.

    python tests/bench/bench_ui.py [--reproducible]

Starts a `tiercel server` on a free port with flows of 50, 300 and 1000 tasks and drives Debian's
chromium (the UI must be built: scripts/build-ui). Targets (docs/user/ui.md, ui reference):
first-load shell JS <= 60 KiB gzip; a schema error shown <= 300 ms after an edit of a 50-task
flow; typing into a 300-task flow without a main-thread task over 100 ms; 10,000 log lines in < 1 s.
``--reproducible`` also builds the UI twice and compares the outputs byte for byte.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "kernel"))
STATIC = ROOT / "kernel" / "tiercel" / "ui" / "static"

from tiercel.testing.harness import TiercelServer  # noqa: E402

LONG_TASKS = """() => { window.__long = []; new PerformanceObserver((l) => l.getEntries()
    .forEach((e) => window.__long.push(e.duration))).observe({ type: "longtask", buffered: false }); }"""


def flow(n: int, flow_id: str) -> str:
    lines = [f"id: {flow_id}", "namespace: bench.ui", "tasks:"]
    for i in range(n):
        if i % 10 == 5:
            lines += [
                f"  - id: par{i}",
                "    type: core.Parallel",
                "    tasks:",
                f"      - {{id: a{i}, type: core.Log, message: x}}",
                f"      - {{id: b{i}, type: core.Log, message: y}}",
            ]
        else:
            lines += [f"  - id: t{i}", "    type: core.Log", f'    message: "task {i} {{{{ flow.id }}}}"']
    return "\n".join(lines) + "\n"


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


def bundle_sizes() -> None:
    index = (STATIC / "index.html").read_text()
    shell = [p for p in (STATIC / "assets").glob("index-*.js")]
    shell_gz = sum(len(gzip.compress(p.read_bytes(), 9)) for p in shell)
    editor = sum(len(gzip.compress(p.read_bytes(), 9)) for p in (STATIC / "assets").glob("editor-*.js"))
    print(
        f"first-load shell JS: {shell_gz / 1024:.1f} KiB gzip (target <= 60); editor chunk (lazy): "
        f"{editor / 1024:.0f} KiB gzip; editor in index.html: {'editor-' in index}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reproducible", action="store_true", help="build twice and compare")
    args = parser.parse_args()
    if args.reproducible:
        hashes = []
        for _ in range(2):
            subprocess.run([str(ROOT / "scripts" / "build-ui"), "--force"], check=True, capture_output=True)
            hashes.append(digest(STATIC))
        print(f"two builds byte-identical: {hashes[0] == hashes[1]}")
    bundle_sizes()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as home:
        server = TiercelServer(Path(home) / "home").start()
        try:
            for n in (50, 300, 1000):
                server.deploy(flow(n, f"f{n}"))
            ex = httpx.post(f"{server.url}/api/v1/executions/bench.ui/f50", params={"wait": "true"}, json={}).json()
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--headless=new", "--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                for _ in range(2):  # the second load is the warm one
                    t = time.monotonic()
                    page.goto(f"{server.url}/ui/flows")
                    page.locator("[data-flow]").first.wait_for()
                print(f"flows page (warm): {(time.monotonic() - t) * 1000:.0f} ms")
                for n in (50, 300, 1000):
                    t = time.monotonic()
                    page.goto(f"{server.url}/ui/flows/bench.ui/f{n}")
                    page.locator(".cm-content").wait_for()
                    page.locator(".topology svg .node, .topology .banner").first.wait_for(
                        timeout=30000
                    )  # drawn, or gated
                    opened = time.monotonic() - t
                    page.get_by_text("0 problems").wait_for(timeout=30000)
                    page.evaluate(LONG_TASKS)
                    page.locator(".cm-content").click()
                    page.keyboard.press("Control+Home")
                    page.keyboard.press("Enter")
                    page.keyboard.press("ArrowUp")
                    t = time.monotonic()
                    page.keyboard.insert_text("bogus: 1")
                    page.get_by_text("`bogus` is not allowed").first.wait_for(timeout=30000)
                    shown = time.monotonic() - t
                    page.keyboard.press("Escape")
                    for ch in "abcdefghijklmnopqrst":
                        page.keyboard.type(ch)
                    page.wait_for_timeout(1500)
                    worst = max(page.evaluate("window.__long") or [0])
                    print(
                        f"{n}-task flow: editor + topology {opened * 1000:.0f} ms; schema error shown "
                        f"{shown * 1000:.0f} ms after the edit; worst main-thread task while typing {worst:.0f} ms"
                    )
                from tiercel.backend import Stores

                stores = Stores.open(Path(home) / "home" / "tiercel.db")
                stores.logs.append((ex["id"], None, "bulk", 1, "INFO", f"line {i}", time.time()) for i in range(10_000))
                stores.close()
                t = time.monotonic()
                page.goto(f"{server.url}/ui/executions/{ex['id']}")
                page.get_by_role("tab", name="Logs").click()
                page.get_by_text(re.compile(r"^100\d\d lines$")).wait_for()
                print(
                    f"10,000 log lines: {(time.monotonic() - t) * 1000:.0f} ms; rows in the DOM: "
                    f"{page.locator('.line').count()}"
                )
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
