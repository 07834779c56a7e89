"""Chaos run: a webserver, executors and workers as subprocesses over one database; a seeded loop
SIGKILLs a random executor or worker and restarts it, while executions keep coming. Then every
execution must end SUCCESS, each task run with exactly one SUCCESS attempt (only LOST attempts
before it), and the queue must be empty.

    scripts/chaos [--rounds 5] [--seed N] [--db postgresql://…] [--executions 4]

Prints the seed first (re-run a failure with --seed); exits 1 on a violated check.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

FLOW = """\
id: chaos
namespace: chaos.demo
tasks:
  - {id: first, type: core.Sleep, duration: PT0.3S}
  - id: fan
    type: core.Parallel
    tasks:
      - {id: left, type: core.Sleep, duration: PT0.2S}
      - {id: right, type: core.Return, format: "{{ 6 * 7 }}"}
  - {id: last, type: core.Return, format: "{{ outputs.right.value }}"}
"""
ENDED = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="kills (each followed by a restart)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--db", default=None, help="database URL, a dedicated one: its Tiercel tables are created there "
                    "(default: a SQLite file in a temporary home)")
    ap.add_argument("--executions", type=int, default=4, help="executions started per round")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"chaos: seed {seed}, {args.rounds} rounds", flush=True)
    rng = random.Random(seed)
    from tiercel.testing.services import free_port

    with tempfile.TemporaryDirectory(prefix="tiercel-chaos-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        url = args.db or f"sqlite:///{home / 'tiercel.db'}"
        env = {**os.environ, "TIERCEL_DB": url, "TIERCEL_LEASE_SECONDS": "2"}
        port = free_port()
        logs = open(home / "processes.log", "ab")

        def spawn(*cmd: str) -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", *cmd, "--home", str(home)],
                                    env=env, stdout=logs, stderr=subprocess.STDOUT)

        web = spawn("webserver", "--port", str(port))
        parts = {"executor-1": ("executor",), "executor-2": ("executor",),
                 "worker-1": ("worker", "--concurrency", "4"), "worker-2": ("worker", "--concurrency", "4")}
        procs = {name: spawn(*cmd) for name, cmd in parts.items()}
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        ids: list[str] = []
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if api.get("/api/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("chaos: the webserver did not start")
                time.sleep(0.1)
            api.post("/api/v1/flows", content=FLOW, headers={"Content-Type": "application/x-yaml"}).raise_for_status()
            for n in range(args.rounds):
                for _ in range(args.executions):
                    r = api.post("/api/v1/executions/chaos.demo/chaos")
                    r.raise_for_status()
                    ids.append(r.json()["id"])
                time.sleep(rng.uniform(0.3, 1.2))
                victim = rng.choice(sorted(procs))
                print(f"chaos: round {n + 1}: SIGKILL {victim} (pid {procs[victim].pid})", flush=True)
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait()
                time.sleep(rng.uniform(0.2, 1.0))
                procs[victim] = spawn(*parts[victim])
            problems = verify(url, ids, timeout=90)
        finally:
            api.close()
            for p in [web, *procs.values()]:
                if p.poll() is None:
                    p.terminate()
            for p in [web, *procs.values()]:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
            logs.close()
        if problems:
            print(f"chaos: FAILED (seed {seed}):", *problems, sep="\n  ", flush=True)
            print((home / "processes.log").read_text(errors="replace")[-4000:])
            return 1
    print(f"chaos: OK: {len(ids)} executions, every task run exactly once successful (seed {seed})", flush=True)
    return 0


def verify(url: str, ids: list[str], timeout: float) -> list[str]:
    from tiercel.backend import Stores

    stores = Stores.open(url)
    db = stores.db
    try:
        marks = ",".join("?" * len(ids))
        deadline = time.monotonic() + timeout
        while True:
            states = dict(db.query(f"SELECT id, state FROM executions WHERE id IN ({marks})", ids))
            if len(states) == len(ids) and all(s in ENDED for s in states.values()):
                break
            if time.monotonic() > deadline:
                waiting = {i: s for i, s in states.items() if s not in ENDED}
                return [f"{len(waiting)} execution(s) not ended after {timeout} s: {waiting}"]
            time.sleep(0.2)
        problems = [f"execution {i} ended {s}" for i, s in states.items() if s != "SUCCESS"]
        runs: dict[tuple[str, str], list[str]] = {}
        for ex, task, state in db.query(
                f"SELECT a.execution_id, t.id, a.state FROM attempts a JOIN task_runs t ON t.id = a.task_run_id "
                f"WHERE a.execution_id IN ({marks}) ORDER BY a.execution_id, t.id, a.attempt", ids):
            runs.setdefault((ex, task), []).append(state)
        for key, states_ in runs.items():
            if states_.count("SUCCESS") != 1 or set(states_[:-1]) - {"LOST"}:
                problems.append(f"task run {key}: attempts {states_} (expected LOST… then one SUCCESS)")
        for table in ("jobs", "results"):
            left = db.one(f"SELECT COUNT(*) FROM {table}")[0]
            if left:
                problems.append(f"{left} row(s) left in {table}")
        return problems
    finally:
        stores.close()


if __name__ == "__main__":
    sys.exit(main())
