"""Whole-process wall times of `tiercel --help` and `tiercel validate` on a 200-task flow.

Run: python tests/bench/bench_kernel.py [runs]. Prints figures; asserts nothing.
Targets on the project's 2-core machines: --help < 0.15 s, validate < 0.3 s.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def big_flow(n: int = 200) -> str:
    """A flow of *n* tasks: core.Log tasks with retries, every tenth a Sequential holding one more."""
    lines = ["id: big", "namespace: bench", "inputs:", "  - {id: x, type: STRING, defaults: hi}", "tasks:"]
    count = 0
    while count < n:
        if count % 10 == 0:
            lines += [f"  - id: seq{count}", "    type: core.Sequential", "    tasks:",
                      f"      - id: inner{count}", "        type: core.Log", '        message: "{{ inputs.x }}"']
            count += 2
        else:
            lines += [f"  - id: t{count}", "    type: core.Log", f"    message: hello {count}",
                      "    retry: {type: constant, interval: PT1S, maxAttempt: 3}"]
            count += 1
    return "\n".join(lines) + "\n"


def wall(args: list[str], runs: int) -> tuple[float, float, float]:
    """Median and best wall time, and median CPU time (user + system: steadier on a busy machine)."""
    # as installed: bytecode cached (PYTHONDONTWRITEBYTECODE would recompile every module each run)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(args, check=True, capture_output=True, env=env)  # warm-up writes the .pyc files
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), min(times), statistics.median(cpu)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    exe = str(Path(sys.executable).with_name("tiercel"))
    with tempfile.TemporaryDirectory() as tmp:
        flow = Path(tmp) / "big.yaml"
        flow.write_text(big_flow())
        for label, args, target in (("tiercel --help", [exe, "--help"], 0.15),
                                    ("tiercel validate (200 tasks)", [exe, "validate", str(flow)], 0.3)):
            median, best, cpu = wall(args, runs)
            print(f"{label:30s} wall median {median * 1000:5.0f} ms, best {best * 1000:5.0f} ms; "
                  f"cpu {cpu * 1000:5.0f} ms; target {target * 1000:.0f} ms")


if __name__ == "__main__":
    main()
