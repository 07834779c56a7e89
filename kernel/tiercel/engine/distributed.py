"""`tiercel worker`: a process that only runs tasks, taking jobs from the database's queue.

A worker claims as many jobs as it has free slots, from each of its queues in turn; holds a
lease on each (extended with its heartbeat, every ``lease / 3`` seconds); renders and runs
the task with the same code as the embedded mode; and reports each attempt by deleting its
job and writing its result in one transaction, only while it still holds the lease. A worker
killed with SIGKILL stops heartbeating: once its leases expire an executor turns its attempts
LOST, and the executor's retry rules run them again elsewhere (a lost attempt counts as an
attempt). A worker stopped cleanly puts its jobs back in the queue at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from tiercel.backend.jobs import DEFAULT_QUEUE, ClaimedJob, ResultRow
from tiercel.engine.executor import Job, Result
from tiercel.model import State

log = logging.getLogger("tiercel.worker")

#: Seconds a claimed job stays leased without a heartbeat; ``TIERCEL_LEASE_SECONDS`` overrides it.
DEFAULT_LEASE = 10.0


def lease_seconds(value: float | None = None) -> float:
    if value is not None:
        return float(value)
    env = os.environ.get("TIERCEL_LEASE_SECONDS")
    return float(env) if env else DEFAULT_LEASE


class WorkerLoop:
    """Claims, runs and reports jobs for one worker process until stopped."""

    def __init__(self, rt: Any, concurrency: int = 8, queues: list[str] | None = None,
                 lease: float | None = None) -> None:
        self.rt = rt
        self.concurrency = concurrency
        self.queues = list(queues or [DEFAULT_QUEUE])
        self.lease = lease_seconds(lease)
        self.id = rt.process_id
        self.running: dict[tuple[str, int], str] = {}  # (task run, attempt) -> execution id
        self._uses: dict[str, int] = {}  # execution id -> jobs of it running here (its row stays in rt.live)
        self._wake = asyncio.Event()
        self.completed = 0

    async def run(self, stop: asyncio.Event) -> None:
        rt = self.rt
        rt.ownership.register()
        rt.stores.processes.capacity(self.id, self.concurrency, 0, self.queues)
        log.info("worker %s: %d slots, queues %s, lease %g s", self.id, self.concurrency, ", ".join(self.queues),
                 self.lease)
        beat_every = min(2.0, self.lease / 3)
        last_beat = time.monotonic()
        idle = 0.0
        try:
            while not stop.is_set():
                claimed = 0
                free = self.concurrency - len(self.running)
                for queue in self.queues:
                    if free <= 0:
                        break
                    loaded: dict[str, Any] = {}  # one load per execution and claim (a fan-out claims many of one)
                    for job in rt.stores.jobs.claim(self.id, queue, free, self.lease):
                        self._start(job, loaded)
                        claimed += 1
                        free -= 1
                now = time.monotonic()
                if now - last_beat >= beat_every:
                    last_beat = now
                    self._beat()
                rt.logs.flush()
                if claimed:
                    idle = 0.0
                    await asyncio.sleep(0)
                    continue
                # nothing new: poll again soon after activity, backing off to 100 ms when idle
                idle = min(0.1, idle * 2 if idle else 0.005)
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), idle)
                except TimeoutError:
                    pass
        finally:
            await self._leave()

    def _beat(self) -> None:
        rt = self.rt
        for task_run_id, attempt in rt.stores.jobs.extend(self.id, self.lease):
            if (task_run_id, attempt) in self.running:
                rt.worker.cancel(task_run_id)
        rt.stores.processes.capacity(self.id, self.concurrency, len(self.running), self.queues)

    def _start(self, claimed: ClaimedJob, loaded: dict[str, Any]) -> None:
        rt = self.rt
        key = (claimed.task_run_id, claimed.attempt)
        try:
            if claimed.execution_id not in loaded:
                loaded[claimed.execution_id] = rt.stores.executions.load(claimed.execution_id)
            ex = loaded[claimed.execution_id]
            tr = ex.task_runs.get(claimed.task_run_id) if ex is not None else None
            if ex is None or tr is None or ex.terminal or tr.attempt != claimed.attempt:
                self._report(claimed.execution_id, Result(claimed.task_run_id, claimed.attempt, State.KILLED, None,
                                                          "the execution no longer waits for this attempt",
                                                          time.time(), time.time()))
                return
            flow = rt.flow_of(ex)
            task = rt.executor.plan(flow).tasks[tr.task_id]
            variables = rt.variables.build(flow, ex, tr, task)
        except Exception as exc:
            log.exception("cannot start attempt %d of task run %s", claimed.attempt, claimed.task_run_id)
            self._report(claimed.execution_id, Result(claimed.task_run_id, claimed.attempt, State.FAILED, None,
                                                      f"the worker could not prepare the task: {exc}",
                                                      time.time(), time.time()))
            return
        if claimed.execution_id not in rt.live:
            rt.live[claimed.execution_id] = ex  # secrets_of() and output offloading read it there
        self._uses[ex.id] = self._uses.get(ex.id, 0) + 1
        self.running[key] = ex.id
        rt.worker.submit(Job(ex.id, tr, task, claimed.attempt, variables, workdir=tr.meta.workdir), self._done)

    def _done(self, execution_id: str, result: Result) -> None:
        key = (result.task_run_id, result.attempt)
        if self.running.pop(key, None) is not None:
            left = self._uses.get(execution_id, 1) - 1
            if left <= 0:
                self._uses.pop(execution_id, None)
                self.rt.live.pop(execution_id, None)
            else:
                self._uses[execution_id] = left
        self._report(execution_id, result)
        self._wake.set()

    def _report(self, execution_id: str, result: Result) -> None:
        rt = self.rt
        rt.logs.flush()  # the attempt's logs are stored before its result
        row = ResultRow(result.task_run_id, result.attempt, execution_id, str(result.state), result.outputs,
                        result.error, result.started_at, result.ended_at, self.id)
        if rt.stores.jobs.complete(self.id, row):
            self.completed += 1
        else:
            log.warning("discarding the result of attempt %d of task run %s: its lease was lost (stale)",
                        result.attempt, result.task_run_id)

    async def _leave(self) -> None:
        """A clean stop: jobs go back to the queue for other workers, the tasks running here are cancelled."""
        rt = self.rt
        try:
            released = rt.stores.jobs.release(self.id)
            if released:
                log.info("worker %s: %d job(s) back in the queue", self.id, released)
        except Exception:
            log.exception("could not release this worker's jobs (their leases will expire)")
        for task in list(rt.worker.running.values()):
            task.cancel()
        if rt.worker.running:
            await asyncio.gather(*rt.worker.running.values(), return_exceptions=True)
