"""Overhead of metrics and tracing on the engine: the 1,000-task chain, in one process, the modes interleaved.

    python tests/bench/bench_observability.py [--repeat 5]

Runs the chain with metrics off, metrics on, and metrics and tracing on (spans to a
BatchSpanProcessor whose exporter drops them, as a collector on the network takes them off the
process), one mode after the other, *repeat* times, so that the load of a shared machine hits
every mode alike. Prints the median wall and CPU time of the run (start-up excluded). Targets
(issue #16): metrics < 5 %, tracing < 15 %.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from bench_engine import chain
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from tiercel.observability import tracing
    from tiercel.plugins import load_registry
    from tiercel.testing import run_flow

    class Drop(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            return SpanExportResult.SUCCESS

    os.environ["TIERCEL_METRICS"] = "off"
    registries = {"off": load_registry()}
    os.environ["TIERCEL_METRICS"] = "on"
    registries["metrics"] = load_registry()
    tracing.configure(Drop())
    registries["tracing"] = load_registry()
    tracing.configure(None)

    source = chain()
    homes = {mode: Path(tempfile.mkdtemp()) for mode in registries}
    times: dict[str, list[tuple[float, float]]] = {mode: [] for mode in registries}
    for round_ in range(args.repeat + 1):  # the first round warms the caches and databases
        for mode, registry in registries.items():
            if mode == "tracing":
                tracing.configure(Drop())
            start, cpu = time.perf_counter(), time.process_time()
            result = run_flow(source, home=homes[mode], registry=registry)
            took = (time.perf_counter() - start, time.process_time() - cpu)  # CPU: every thread of the process
            tracing.flush()
            tracing.configure(None)
            assert result["state"] == "SUCCESS", result["state"]
            if round_:
                times[mode].append(took)
    base_wall = statistics.median(t[0] for t in times["off"])
    base_cpu = statistics.median(t[1] for t in times["off"])
    for mode, values in times.items():
        wall, cpu = statistics.median(t[0] for t in values), statistics.median(t[1] for t in values)
        label = {"off": "metrics off, tracing off", "metrics": "metrics on", "tracing": "metrics + tracing on"}[mode]
        print(f"{label:<26} wall median {wall:6.3f} s (min {min(t[0] for t in values):6.3f})  "
              f"{100 * (wall / base_wall - 1):+5.1f} %   CPU median {cpu:6.3f} s  {100 * (cpu / base_cpu - 1):+5.1f} %")


if __name__ == "__main__":
    main()
