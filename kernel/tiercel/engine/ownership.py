"""Which process runs which execution: the one place that decides.

Every process registers itself and heartbeats every 2 s; an execution is owned by the
process that runs it. A process is alive when its pid exists (same host) or its heartbeat
is fresher than 10 s (another host). A process finding an unfinished execution whose owner
is dead takes it over, atomically, so two survivors never both do.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

from tiercel.backend import Stores
from tiercel.model import State, new_id

HEARTBEAT_EVERY = 2.0
DEAD_AFTER = 10.0


class Ownership:
    def __init__(self, stores: Stores, kind: str = "server", quota_of: Any = None) -> None:
        self.stores = stores
        #: ``quota_of(namespace)``: the namespace quotas over it; their queued executions start in order elsewhere.
        self.quota_of: Callable[[str], list[str]] = quota_of or (lambda namespace: [])
        self.kind = kind
        self.host = socket.gethostname()
        self.id = f"{self.host}:{os.getpid()}:{new_id()[:6]}"
        self._last_beat = 0.0

    def register(self) -> None:
        from tiercel import __version__

        self.stores.processes.register(self.id, self.kind, self.host, os.getpid(), __version__)
        self._last_beat = time.monotonic()

    def heartbeat(self) -> None:
        """Say this process is alive (at most every 2 s, however often it is called)."""
        if time.monotonic() - self._last_beat >= HEARTBEAT_EVERY:
            self._last_beat = time.monotonic()
            self.stores.processes.heartbeat(self.id)

    def alive(self, owner: str | None) -> bool:
        """Whether the process *owner* still runs."""
        if not owner:
            return False
        if owner == self.id:
            return True
        found = self.stores.processes.get(owner)
        if found is None:
            return False
        host, pid, last_seen = found
        if host == self.host:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return time.time() - last_seen < DEAD_AFTER

    def owned_elsewhere(self, execution_id: str) -> bool:
        """Whether a live process other than this one runs the execution."""
        owner = self.stores.executions.owner(execution_id)
        return owner not in (None, self.id) and self.alive(owner)

    def orphans(self, running_here: set[str]) -> list[tuple[str, str | None, str]]:
        """Unfinished executions nobody alive runs, to take over: (id, old owner, why).

        An active execution whose owner is gone is recovered; for a flow whose executions all
        wait QUEUED with nothing of it running, the oldest queued one is started.
        """
        alive: dict[str, bool] = {}
        queued: dict[tuple[str, str], tuple[str, str | None]] = {}
        active: set[tuple[str, str]] = set()
        found: list[tuple[str, str | None, str]] = []
        for execution_id, owner, state, namespace, flow_id in self.stores.executions.unfinished():
            flow = (namespace, flow_id)
            if state == State.QUEUED:
                if not self.quota_of(namespace):
                    queued.setdefault(flow, (execution_id, owner))
                continue
            active.add(flow)
            if execution_id in running_here or owner == self.id:
                continue
            if owner is not None:
                if owner not in alive:
                    alive[owner] = self.alive(owner)
                if alive[owner]:
                    continue
            found.append((execution_id, owner, f"left {state} by {owner or 'no process'}"))
        for flow, (execution_id, owner) in queued.items():
            if flow not in active and execution_id not in running_here:
                found.append((execution_id, owner, "queued while nothing of its flow runs any more"))
        return found

    def take_over(self, execution_id: str, old_owner: str | None) -> bool:
        """Become the execution's owner, unless another process just did."""
        return self.stores.executions.take_over(execution_id, old_owner, self.id)

    def claim(self, execution_id: str) -> None:
        self.stores.executions.set_owner(execution_id, self.id)

    def release(self, execution_id: str) -> None:
        self.stores.executions.set_owner(execution_id, None)

    def close(self) -> None:
        """Leave: unfinished executions go to whichever process comes next; the process row is removed."""
        self.stores.executions.release(self.id)
        self.stores.processes.remove(self.id)
