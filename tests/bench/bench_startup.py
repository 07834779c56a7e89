"""Start-up cost of the CLI: CPU seconds (user+sys, less sensitive to a busy machine than wall time) and
wall seconds of whole processes, and how many modules each imports.

    python tests/bench/bench_startup.py [--repeat 7]

Run it with PYTHONDONTWRITEBYTECODE unset (the .pyc files must exist, as after an install).
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

ONE_TASK = "id: one\nnamespace: bench\ntasks:\n  - {id: hello, type: core.Log, message: \"hello {{ flow.id }}\"}\n"


def chain(filtered: bool, n: int = 1000) -> str:
    """A chain of Return tasks, each reading the previous one's value: plain paths, or a filter in each."""
    tasks = ["  - {id: t0, type: core.Return, format: '1'}"]
    for i in range(1, n):
        expr = f"outputs.t{i - 1}.value | int + 1" if filtered else f"outputs.t{i - 1}.value"
        tasks.append(f"  - {{id: t{i}, type: core.Return, format: '{{{{ {expr} }}}}'}}")
    return "id: chain\nnamespace: bench\ntasks:\n" + "\n".join(tasks) + "\n"


def measure(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tiercel.cli.main", *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0,):
        print(proc.stdout[-1000:], proc.stderr[-1000:], file=sys.stderr)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def modules(args: list[str], env: dict[str, str]) -> int:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tiercel.cli.main", *args], env=env,
                          capture_output=True, text=True)
    return sum(1 for line in proc.stderr.splitlines() if line.startswith("import time:") and "|" in line) - 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        flow = Path(tmp) / "one.yaml"
        flow.write_text(ONE_TASK)
        env = {**os.environ, "TIERCEL_HOME": str(Path(tmp) / "home")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        plain, filtered = Path(tmp) / "plain.yaml", Path(tmp) / "filtered.yaml"
        plain.write_text(chain(False))
        filtered.write_text(chain(True))
        for name, args in (("tiercel --help", ["--help"]), ("tiercel run (1 task)", ["run", str(flow), "-q"]),
                           ("tiercel validate (1 flow)", ["validate", str(flow)]),
                           ("run 1,000-task chain, paths", ["run", str(plain), "-q"]),
                           ("run 1,000-task chain, filter", ["run", str(filtered), "-q"])):
            measure(args, env)  # warm: .pyc files, the home, the expression cache
            runs = [measure(args, env) for _ in range(options.repeat)]
            print(f"{name:<28} cpu median {statistics.median(r[1] for r in runs):6.3f} s  "
                  f"wall median {statistics.median(r[0] for r in runs):6.3f} s  modules {modules(args, env)}")


if __name__ == "__main__":
    main()
