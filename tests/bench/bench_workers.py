"""Distributed-mode benchmark: tasks/s through the job queue with 1..N `tiercel worker` processes,
against the embedded `tiercel server` on the same flow. Prints figures.

    python tests/bench/bench_workers.py [--tasks 300] [--workers 1 2] [--concurrency 8]

The flow is a ForEach of N values (concurrencyLimit 0) whose child is a core.Return: N runnable
task runs in one execution, so the figure is the queue's throughput (claim, run, result, apply).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parents[2] / "kernel"))
from tiercel.testing.services import free_port  # noqa: E402


def flow(n: int) -> str:
    return (f"id: fan\nnamespace: bench\ntasks:\n  - id: each\n    type: core.ForEach\n"
            f"    values: \"{{{{ range({n}) | list }}}}\"\n    concurrencyLimit: 0\n    tasks:\n"
            f"      - {{id: item, type: core.Return, format: \"{{{{ taskrun.value }}}}\"}}\n")


def spawn(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", *args, "--home", str(home)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(n: int, workers: int, concurrency: int) -> float:
    """Tasks per second for one execution of the flow; workers=0 is the embedded server."""
    with tempfile.TemporaryDirectory() as tmp:
        home, port = Path(tmp) / "home", free_port()
        procs = []
        try:
            if workers == 0:
                procs.append(spawn(home, "server", "--port", str(port)))
            else:
                procs.append(spawn(home, "webserver", "--port", str(port)))
                procs.append(spawn(home, "executor"))
                procs += [spawn(home, "worker", "--concurrency", str(concurrency)) for _ in range(workers)]
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                time.sleep(0.1)
            time.sleep(1.5)  # let the executor and workers register
            r = httpx.post(f"{url}/api/v1/flows", content=flow(n), headers={"Content-Type": "application/x-yaml"})
            r.raise_for_status()
            start = time.perf_counter()
            r = httpx.post(f"{url}/api/v1/executions/bench/fan?wait=true", timeout=600)
            took = time.perf_counter() - start
            assert r.json()["state"] == "SUCCESS", r.text[:500]
            return n / took
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    os.environ.setdefault("TIERCEL_LEASE_SECONDS", "10")
    print(f"{'mode':<28} {'tasks/s':>8}")
    print(f"{'embedded (tiercel server)':<28} {run(args.tasks, 0, args.concurrency):8.1f}")
    for w in args.workers:
        label = f"{w} worker(s) x {args.concurrency} slots"
        print(f"{label:<28} {run(args.tasks, w, args.concurrency):8.1f}")


if __name__ == "__main__":
    main()
