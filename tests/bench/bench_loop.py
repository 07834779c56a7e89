"""Loop-lag probe: the worst stall of `tiercel server`'s event loop under loads that used to block it.

    python tests/bench/bench_loop.py [--only NAME]

One asyncio loop runs the API, the scheduler and every execution of a server, so anything
CPU-heavy done on it delays everything else. A probe thread asks ``/api/v1/health`` every 10 ms
(a trivial handler: its latency is the loop's lag) while each load runs, and reports p50, p99
and the worst latency. Target: worst stall <= 50 ms under every load.

Loads: a backfill from 1900 of a per-minute schedule; creating a 1 MiB flow; a task whose
expression takes seconds to render; 100 live SSE followers of one busy execution; the orphan
sweep over 300,000 ended executions.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kernel"))
from tiercel.testing import TiercelServer  # noqa: E402

YAML = {"Content-Type": "application/x-yaml"}


class Probe:
    """Times GET /api/v1/health every 10 ms on its own connection until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                client.get("/api/v1/health")
                self.samples.append((time.perf_counter() - start) * 1000)
                time.sleep(0.01)

    def report(self, name: str) -> str:
        s = sorted(self.samples) or [0.0]
        p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
        verdict = "ok" if s[-1] <= 50 else "STALLS"
        return (f"{name:<34} {len(s):5d} probes  p50 {statistics.median(s):6.1f} ms  p99 {p99:7.1f} ms  "
                f"worst {s[-1]:7.1f} ms  {verdict} (target worst <= 50 ms)")


def backfill_1900(server: TiercelServer, api: httpx.Client) -> None:
    api.post("/api/v1/flows", headers=YAML, content="""\
id: minutely
namespace: bench.loop
tasks:
  - {id: t, type: core.Log, message: "{{ trigger.date }}"}
triggers:
  - {id: every_minute, type: core.Schedule, cron: "* * * * *", disabled: true}
""").raise_for_status()
    r = api.post("/api/v1/triggers/bench.loop/minutely/every_minute/backfill",
                 json={"start": "1900-01-01T00:00:00Z", "end": "1900-03-01T00:00:00Z"})
    r.raise_for_status()
    time.sleep(3)
    api.delete("/api/v1/triggers/bench.loop/minutely/every_minute/backfill")


def big_flow(server: TiercelServer, api: httpx.Client) -> None:
    head = "id: big\nnamespace: bench.loop\ninputs:\n  - {id: n, type: INT, defaults: 1}\ntasks:\n"
    tasks, i = [], 0
    while len(head) + sum(map(len, tasks)) < 1 << 20:
        tasks.append(f"  - id: t{i}\n    type: core.Log\n    message: \"{'x' * 180} {{{{ inputs.n }}}}\"\n")
        i += 1
    api.post("/api/v1/flows", headers=YAML, content=head + "".join(tasks[:-1]))  # the largest flow accepted
    time.sleep(1)


def slow_expression(server: TiercelServer, api: httpx.Client) -> None:
    api.post("/api/v1/flows", headers=YAML, content="""\
id: slow
namespace: bench.loop
tasks:
  - id: heavy
    type: core.Return
    format: "{{ range(100000) | map('string') | join(',') | length }}{{ range(100000) | map('string') | join(',') | length }}"
""").raise_for_status()
    started = api.post("/api/v1/executions/bench.loop/slow", json={}, params={"wait": "true"})
    started.raise_for_status()


def followers(server: TiercelServer, api: httpx.Client) -> None:
    api.post("/api/v1/flows", headers=YAML, content="""\
id: busy
namespace: bench.loop
tasks:
  - id: each
    type: core.ForEach
    values: "{{ range(300) | list }}"
    concurrencyLimit: 4
    tasks:
      - {id: nap, type: core.Sleep, duration: PT0.01S}
""").raise_for_status()
    execution = api.post("/api/v1/executions/bench.loop/busy", json={}).json()
    done = threading.Event()

    def follow() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as client, \
                client.stream("GET", f"/api/v1/executions/{execution['id']}/follow") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: end") or done.is_set():
                    return

    threads = [threading.Thread(target=follow, daemon=True) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()


def orphan_sweep(server: TiercelServer, api: httpx.Client) -> None:
    time.sleep(6)  # three sweeps over the seeded history


def seed_history(home: Path, n: int = 300_000) -> None:
    """n ended executions, written straight into the home's database (only the bench does this)."""
    db = sqlite3.connect(home / "tiercel.db")
    now = time.time()
    rows = [(f"seed{i:07d}", "bench.seed", "seeded", "h", "SUCCESS", now - n + i) for i in range(n)]
    db.executemany("INSERT INTO executions (id, namespace, flow_id, flow_hash, state, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, 0)", rows)
    db.commit()
    db.close()


LOADS: dict[str, Callable[[TiercelServer, httpx.Client], None]] = {
    "backfill from 1900 (every minute)": backfill_1900,
    "creating a 1 MiB flow": big_flow,
    "a slow task expression": slow_expression,
    "100 SSE followers of one execution": followers,
    "orphan sweep, 300,000 executions": orphan_sweep,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="run only the load whose name contains this")
    args = parser.parse_args()
    for name, load in LOADS.items():
        if args.only and args.only not in name:
            continue
        home = Path(tempfile.mkdtemp(prefix="tiercel-bench-loop-"))
        if "sweep" in name:
            TiercelServer(home).start().stop()  # create the schema
            seed_history(home)
        server = TiercelServer(home, env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}).start()
        try:
            with httpx.Client(base_url=server.url, timeout=120) as api, Probe(server.url) as probe:
                time.sleep(0.3)
                load(server, api)
            print(probe.report(name), flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
