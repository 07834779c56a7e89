"""Webhook → execution end: throughput and latency of Kestra's benchmark flow on `tiercel server`.

Run: python tests/bench/bench_webhook.py [--rates 10,25,50,75,100] [--seconds 20]

Starts `tiercel server` on a fresh embedded home, deploys the two-task flow of Kestra's
published benchmark (OutputValues then Log, started by a webhook) and drives it with an
open-loop generator: calls leave at fixed intervals whatever the answers, and latency is
measured from each call's *intended* send time to its execution's end date (no
coordinated omission). Prints per rate: achieved executions/s and /min, p50/p95/p99/max
latency, and the backlog left when the generator stopped. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from tiercel.testing.services import free_port

FLOW = """\
id: benchmark01
namespace: bench
tasks:
  - id: output
    type: core.OutputValues
    values:
      sent: "{{ trigger.body.sent }}"
  - id: log
    type: core.Log
    message: "{{ outputs.output.values.sent }}"
triggers:
  - {id: hook, type: core.Webhook, key: benchmark-key-0123456789}
"""


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def drive(url: str, rate: float, seconds: float, run: str) -> tuple[int, int]:
    """Send rate×seconds webhook calls at fixed intervals; return (sent, errors)."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    errors = 0
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        start = time.time() + 0.2
        total = int(rate * seconds)

        async def call(i: int) -> None:
            nonlocal errors
            intended = start + i / rate
            await asyncio.sleep(max(0.0, intended - time.time()))
            try:
                r = await client.post("/api/v1/executions/webhook/bench/benchmark01/benchmark-key-0123456789",
                                      json={"sent": intended, "run": run})
                errors += r.status_code != 200
            except httpx.HTTPError:
                errors += 1

        await asyncio.gather(*(call(i) for i in range(total)))
    return total, errors


def collect(client: httpx.Client, run: str, expected: int, timeout: float = 120) -> tuple[list[float], list[float], int]:
    """Latencies (s) and end times of this run's executions, waiting for the backlog to drain."""
    deadline = time.time() + timeout
    backlog_at_stop = None
    while True:
        page = client.get("/api/v1/executions/search", params={"flowId": "benchmark01", "size": 1000,
                                                              "state": ["SUCCESS", "FAILED"], "page": 1}).json()
        rows = []
        page_no = 1
        while True:
            rows += [r for r in page["results"] if r["trigger"]["variables"]["body"].get("run") == run]
            if page_no * 1000 >= page["total"]:
                break
            page_no += 1
            page = client.get("/api/v1/executions/search", params={"flowId": "benchmark01", "size": 1000,
                                                                  "state": ["SUCCESS", "FAILED"], "page": page_no}).json()
        if backlog_at_stop is None:
            backlog_at_stop = expected - len(rows)
        if len(rows) >= expected or time.time() > deadline:
            break
        time.sleep(0.5)
    latencies, ends = [], []
    for r in rows:
        end = datetime.fromisoformat(r["endDate"].replace("Z", "+00:00")).timestamp()
        latencies.append(end - float(r["trigger"]["variables"]["body"]["sent"]))
        ends.append(end)
    return latencies, ends, backlog_at_stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="10,25,50,75,100", help="Executions per second to offer, in order.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Duration of each rate.")
    parser.add_argument("--url", help="Use a running server instead of starting one.")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tiercel-bench-"))
    proc = None
    url = args.url
    if url is None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(home / "server.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", "server", "--home", str(home / "home"),
                                 "--port", str(port), "--log-level", "WARNING"], stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(200):
                try:
                    if client.get("/api/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            r = client.post("/api/v1/flows", content=FLOW, headers={"Content-Type": "application/x-yaml"})
            if r.status_code == 409:
                client.put("/api/v1/flows/bench/benchmark01", content=FLOW, headers={"Content-Type": "application/x-yaml"})
            asyncio.run(drive(url, 20, 2, "warmup"))
            print(f"cores: {os.cpu_count()}, backend: embedded SQLite, {args.seconds:g} s per rate")
            print(f"{'offered/s':>9} {'done/s':>7} {'per min':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
                  f"{'max ms':>7} {'backlog':>7} {'errors':>6}")
            for rate in [float(x) for x in args.rates.split(",")]:
                run = f"r{rate:g}-{time.time():.0f}"
                t0 = time.time()
                sent, errors = asyncio.run(drive(url, rate, args.seconds, run))
                latencies, ends, backlog = collect(client, run, sent - errors)
                span = (max(ends) - t0) if ends else float("nan")
                done = len(latencies) / span if span == span and span > 0 else 0.0
                ms = [x * 1000 for x in latencies]
                print(f"{rate:9g} {done:7.1f} {done * 60:8.0f} {pct(ms, 50):7.0f} {pct(ms, 95):7.0f} "
                      f"{pct(ms, 99):7.0f} {max(ms, default=float('nan')):7.0f} {backlog:7d} {errors:6d}", flush=True)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)


if __name__ == "__main__":
    main()
