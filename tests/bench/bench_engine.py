"""Engine benchmark: whole-process `tiercel run` wall time (and peak memory). Prints figures.

    python tests/bench/bench_engine.py [--repeat 5]

Targets (2-core machine): 1-task flow < 0.3 s; 1,000-task chain < 1 s; ForEach of 10,000
values with concurrencyLimit 0 < 15 s and < 300 MB peak.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_task() -> str:
    return "id: one\nnamespace: bench\ntasks:\n  - {id: hello, type: core.Log, message: hello}\n"


def chain(n: int = 1000) -> str:
    lines = ["id: chain\nnamespace: bench\ntasks:", "  - {id: t0, type: core.Return, format: '0'}"]
    lines += [f"  - {{id: t{i}, type: core.Return, format: \"{{{{ outputs.t{i - 1}.value }}}}\"}}" for i in range(1, n)]
    return "\n".join(lines) + "\n"


def foreach(n: int = 10_000) -> str:
    return (f"id: fanout\nnamespace: bench\ntasks:\n  - id: each\n    type: core.ForEach\n"
            f"    values: \"{{{{ range({n}) | list }}}}\"\n    concurrencyLimit: 0\n    tasks:\n"
            f"      - {{id: item, type: core.Return, format: \"{{{{ taskrun.value }}}}\"}}\n")


def timed_run(flow: Path, home: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB of the child, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "run", str(flow), "-q"],
                          env={**os.environ, "TIERCEL_HOME": str(home)}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    return wall, max(peak, before) / 1024, proc.returncode


def bench(name: str, source: str, repeat: int, target: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        flow = Path(tmp) / f"{name}.yaml"
        flow.write_text(source)
        home = Path(tmp) / "home"
        timed_run(flow, home)  # warm: create the home and the .pyc files
        runs = [timed_run(flow, home) for _ in range(repeat)]
    walls = [r[0] for r in runs]
    print(f"{name:<28} median {statistics.median(walls):7.3f} s  min {min(walls):7.3f} s  "
          f"peak RSS {max(r[1] for r in runs):6.0f} MB  exit {runs[-1][2]}   target {target}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    floor = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"])
        floor.append(time.perf_counter() - start)
    print(f"{'python -c pass':<28} median {statistics.median(floor):7.3f} s")
    bench("1-task flow", one_task(), args.repeat, "< 0.3 s")
    bench("1,000-task Return chain", chain(), args.repeat, "< 1 s")
    bench("ForEach 10,000 (limit 0)", foreach(), max(1, args.repeat // 3), "< 15 s, < 300 MB")


if __name__ == "__main__":
    main()
