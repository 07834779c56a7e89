"""One process of the platform: the runtime loop plus any of API, scheduler and executor duties.

``tiercel server`` runs them all on one asyncio loop. Every process runs the executions it
starts; the executor duty also takes over executions whose process died (its heartbeat
stopped), so a restart, or a surviving executor, finishes what was running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

log = logging.getLogger("tiercel.server")

ALL = ("api", "scheduler", "executor")


class ServerError(Exception):
    """The process could not start (the HTTP port is taken, say)."""


class _Uvicorn:
    """A uvicorn server that leaves signals to us (we stop the whole process, not just HTTP)."""

    @staticmethod
    def make(app: Any, host: str, port: int) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):  # type: ignore[override]
                yield

        access = os.environ.get("TIERCEL_ACCESS_LOG", "").lower() in ("1", "true", "yes", "on")
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=access, lifespan="off",
                                timeout_graceful_shutdown=2, ws="none")
        if access:  # one line per request: client, method, path, status
            logging.getLogger("uvicorn.access").setLevel(logging.INFO)
        return Server(config)


def _listen(host: str, port: int) -> Any:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on such sockets (without it, Nagle adds 40 ms a reply)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class TiercelProcess:
    """Runs the chosen duties until ``stop`` is set; ``ready`` is set once the API listens."""

    def __init__(self, home: Path | None = None, host: str = "127.0.0.1", port: int = 8080,
                 components: tuple[str, ...] = ALL, worker_slots: int = 64, policy: Any = None,
                 auth: Any = None, queues: list[str] | None = None) -> None:
        from tiercel.server.guard import OriginPolicy

        self.home, self.host, self.port = home, host, port
        self.policy = policy or OriginPolicy.of(host)
        self.auth = auth
        self.components = components
        self.worker_slots = worker_slots
        self.queues = queues
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        from tiercel.engine.runtime import Runtime
        from tiercel.engine.scheduler import FlowIndex, Scheduler
        from tiercel.engine.triggers import TriggerRunner

        if self.components == ("worker",):
            await self._work(stop)
            return
        sock = _listen(self.host, self.port) if "api" in self.components else None  # fail before doing anything
        # `tiercel server` runs tasks itself (embedded mode); the parts hand them to `tiercel worker` processes
        dispatch = "local" if set(self.components) == set(ALL) else "queue"
        rt = Runtime(self.home, worker_slots=self.worker_slots, kind="+".join(self.components), dispatch=dispatch)
        index = FlowIndex(rt)
        scheduler = Scheduler(rt, index)
        runner = TriggerRunner(rt, index) if "scheduler" in self.components else None
        tasks: list[asyncio.Task] = []
        http = None
        inner = asyncio.Event()  # stops the loops once HTTP is down
        try:
            if "executor" in self.components:
                rt.recover_orphans()
            tasks.append(asyncio.create_task(rt.serve(inner, poll_interval=0.25), name="runtime"))
            if "scheduler" in self.components:
                tasks.append(asyncio.create_task(scheduler.run(inner), name="scheduler"))
                tasks.append(asyncio.create_task(runner.run(inner), name="triggers"))  # type: ignore[union-attr]
            else:
                rt.on_end.append(scheduler.on_end)  # flow triggers are evaluated where executions end
            if "executor" in self.components:
                tasks.append(asyncio.create_task(self._sweep(rt, inner), name="recovery"))
            if "api" in self.components:
                from tiercel.server.app import Services, create_app

                app = create_app(Services(rt, scheduler if "scheduler" in self.components else None, runner, index),
                                 list(self.components), self.policy, self.auth)
                http = _Uvicorn.make(app, self.host, self.port)
                tasks.append(asyncio.create_task(http.serve(sockets=[sock]), name="http"))
                while not http.started:
                    if tasks[-1].done():  # uvicorn logged why (usually: the port is taken)
                        raise ServerError(f"cannot listen on {self.host}:{self.port}")
                    await asyncio.sleep(0.01)
            self.ready.set()
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            if http is not None:
                http.should_exit = True
            inner.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            for job in list(rt.worker.running.values()):
                job.cancel()
            rt.close()

    async def _work(self, stop: asyncio.Event) -> None:
        from tiercel.engine.distributed import WorkerLoop
        from tiercel.engine.runtime import Runtime

        rt = Runtime(self.home, worker_slots=self.worker_slots, kind="worker", dispatch="queue")
        loop = WorkerLoop(rt, self.worker_slots, self.queues)
        try:
            self.ready.set()
            await loop.run(stop)
        finally:
            rt.close()

    async def _sweep(self, rt: Any, stop: asyncio.Event, every: float = 2.0) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass
            if stop.is_set():
                return
            try:
                rt.recover_orphans()
                if rt.quotas.limits:  # a safety net: a process killed before starting the next queued one
                    rt.promote_quotas()
            except Exception:
                log.exception("recovery sweep failed; retrying")


def run_process(home: Path | None, host: str, port: int, components: tuple[str, ...], worker_slots: int = 64,
                announce: Any = None, policy: Any = None, auth: Any = None,
                queues: list[str] | None = None) -> None:
    """Run until Ctrl-C or SIGTERM, then stop cleanly (a second Ctrl-C exits at once)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        hits = {"n": 0}

        def on_signal() -> None:
            hits["n"] += 1
            if hits["n"] > 1:
                raise SystemExit(130)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)
        proc = TiercelProcess(home, host, port, components, worker_slots, policy, auth, queues)
        runner = asyncio.create_task(proc.run(stop))
        ready = asyncio.create_task(proc.ready.wait())
        await asyncio.wait([runner, ready], return_when=asyncio.FIRST_COMPLETED)
        if proc.ready.is_set() and announce is not None:
            announce()
        await runner

    asyncio.run(main())
