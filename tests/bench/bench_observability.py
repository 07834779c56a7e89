"""Overhead of metrics and tracing on the engine: the 1,000-task chain, in-process, each mode in its own process.

    python tests/bench/bench_observability.py [--repeat 7]

Prints the median engine time (the flow run, start-up excluded) with metrics off and on, and
tracing off and on (spans to a BatchSpanProcessor whose exporter drops them, as a collector on
the network would take them off the process). Targets (issue #16): metrics < 5 %, tracing < 15 %.

Last figures (2-core machine shared with other jobs, medians of 7): see the report of the branch
that added this file; rerun to get yours.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, statistics, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bench_engine import chain
mode, repeat = sys.argv[2], int(sys.argv[3])
if mode == "tracing":
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from tiercel.observability import tracing

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    tracing.configure(Drop())
from tiercel.testing import run_flow
source = chain()
home = Path(tempfile.mkdtemp())
run_flow(source, home=home)  # warm: plugins, caches, the database
times = []
for _ in range(repeat):
    start = time.perf_counter()
    result = run_flow(source, home=home)
    times.append(time.perf_counter() - start)
    assert result["state"] == "SUCCESS", result["state"]
print(json.dumps(times))
"""


def measure(mode: str, repeat: int) -> list[float]:
    env = {**os.environ, "TIERCEL_METRICS": "off" if mode == "off" else "on"}
    env.pop("TIERCEL_TRACING", None)
    with tempfile.TemporaryDirectory():
        out = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent), mode, str(repeat)], env=env,
                             capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the modes this many times")
    args = parser.parse_args()
    import statistics

    times: dict[str, list[float]] = {"off": [], "metrics": [], "tracing": []}
    for _ in range(args.rounds):
        for mode in times:
            times[mode] += measure(mode, args.repeat)
    base = statistics.median(times["off"])
    for mode, values in times.items():
        median = statistics.median(values)
        label = {"off": "metrics off, tracing off", "metrics": "metrics on", "tracing": "metrics + tracing on"}[mode]
        print(f"{label:<26} median {median:6.3f} s  min {min(values):6.3f} s  overhead {100 * (median / base - 1):+5.1f} %")


if __name__ == "__main__":
    main()
