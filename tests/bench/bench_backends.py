"""Backend benchmark: executions per second of one in-process runtime, on SQLite and on PostgreSQL. Prints figures.

    python tests/bench/bench_backends.py [--n 200] [--chain-n 40] [--db sqlite,postgresql]

Two loads, each all submitted at once and run to the end: a 1-task flow, and a 20-task chain
(20 sequential steps per execution). PostgreSQL is TIERCEL_TEST_POSTGRES_URL or the machine's
127.0.0.1:5432; the bench creates a database of its own and drops it. Unset
PYTHONDONTWRITEBYTECODE first, or import time leaks into the figures.

Measured on the 2-core machine under a load average of 8-10 (other jobs running), --n 100 --chain-n 20,
before and after the runtime committed all steps of one loop turn in one transaction:

    sqlite      1-task 129 -> 212 exec/s   20-task chain 24.2 -> 30.6 exec/s
    postgresql  1-task 9.7 -> 35 exec/s    20-task chain  3.3 -> 4.2 exec/s

On PostgreSQL the time goes to round trips (about 6 per step: BEGIN, the step's statements, COMMIT),
each a few ms on a loaded machine; pipelining a whole step is the next lever.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from pathlib import Path

ONE = "id: one\nnamespace: bench\ntasks:\n  - {id: hello, type: core.Log, message: hello}\n"


def chain(n: int = 20) -> str:
    lines = ["id: chain\nnamespace: bench\ntasks:", "  - {id: t0, type: core.Return, format: '0'}"]
    lines += [f"  - {{id: t{i}, type: core.Return, format: \"{{{{ outputs.t{i - 1}.value }}}}\"}}" for i in range(1, n)]
    return "\n".join(lines) + "\n"


def throughput(source: str, n: int) -> float:
    """Executions per second for *n* executions of *source* submitted at once."""
    from tiercel.engine.runtime import Runtime
    from tiercel.flow import load_flow

    rt = Runtime(Path(tempfile.mkdtemp(prefix="tiercel-bench-")))
    flow = load_flow(source)

    async def main() -> float:
        stop = asyncio.Event()
        loop = asyncio.create_task(rt.serve(stop, poll_interval=0.05))
        warm = rt.new_execution(flow, {})
        rt.submit(warm)
        await rt.wait(warm.id)
        start = time.perf_counter()
        runs = [rt.new_execution(flow, {}) for _ in range(n)]
        for ex in runs:
            rt.submit(ex)
        for ex in runs:
            done = await rt.wait(ex.id)
            assert done is not None and done.state == "SUCCESS", done
        took = time.perf_counter() - start
        stop.set()
        rt.wake()
        await loop
        return n / took

    try:
        return asyncio.run(main())
    finally:
        rt.close()


def with_postgres(fn):  # type: ignore[no-untyped-def]
    import urllib.parse

    import psycopg

    base = os.environ.get("TIERCEL_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    name = f"tiercel_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        os.environ["TIERCEL_DB"] = urllib.parse.urlunsplit(urllib.parse.urlsplit(base)._replace(path=f"/{name}"))
        return fn()
    finally:
        os.environ.pop("TIERCEL_DB", None)
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200, help="executions of the 1-task flow")
    parser.add_argument("--chain-n", type=int, default=40, help="executions of the 20-task chain")
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    os.environ.pop("TIERCEL_DB", None)
    for db in args.db.split(","):
        def run() -> tuple[float, float]:
            return throughput(ONE, args.n), throughput(chain(20), args.chain_n)

        one, twenty = with_postgres(run) if db == "postgresql" else run()
        print(f"{db:<11} 1-task flow: {one:7.1f} exec/s   20-task chain: {twenty:6.1f} exec/s")


if __name__ == "__main__":
    main()
