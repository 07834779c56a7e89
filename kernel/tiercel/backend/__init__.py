"""Persistence: the schema (SQLAlchemy metadata, Alembic migrations) and the stores over it.

All SQL of Tiercel lives in this package. ``Stores.open(path)`` gives one object per kind
of row: executions (with task runs and attempts), flows, processes, commands, logs,
metrics, triggers, the key/value store, auth (users, tokens, sessions, audit) and the encrypted secrets,
over one :class:`Database`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tiercel.backend.auth import AuthStore
    from tiercel.backend.db import Database
    from tiercel.backend.executions import ExecutionStore
    from tiercel.backend.flows import FlowStore
    from tiercel.backend.jobs import JobStore
    from tiercel.backend.kv import KVStore
    from tiercel.backend.logs import LogStore, MetricStore
    from tiercel.backend.processes import CommandStore, ProcessStore
    from tiercel.backend.secrets import SecretStore
    from tiercel.backend.trigger_store import TriggerStore

#: The Alembic head this code expects; a test keeps it equal to the migrations' head.
SCHEMA_HEAD = "0006"


@dataclass
class Stores:
    """Every store of one database."""

    db: Database
    executions: ExecutionStore
    flows: FlowStore
    processes: ProcessStore
    commands: CommandStore
    logs: LogStore
    metrics: MetricStore
    triggers: TriggerStore
    kv: KVStore
    auth: AuthStore
    secrets: SecretStore

    @classmethod
    def open(cls, path: Path) -> Stores:
        """The stores of the SQLite database at *path* (created and migrated as needed)."""
        from tiercel.backend.db import Database

        return cls.of(Database(path))

    @classmethod
    def of(cls, db: Database) -> Stores:
        from tiercel.backend.auth import AuthStore
        from tiercel.backend.executions import ExecutionStore
        from tiercel.backend.flows import FlowStore
        from tiercel.backend.kv import KVStore
        from tiercel.backend.logs import LogStore, MetricStore
        from tiercel.backend.processes import CommandStore, ProcessStore
        from tiercel.backend.secrets import SecretStore
        from tiercel.backend.trigger_store import TriggerStore

        return cls(db, ExecutionStore(db), FlowStore(db), ProcessStore(db), CommandStore(db), LogStore(db),
                   MetricStore(db), TriggerStore(db), KVStore(db), AuthStore(db), SecretStore(db))

    @cached_property
    def jobs(self) -> JobStore:
        """The job queue between executors and workers (distributed mode)."""
        from tiercel.backend.jobs import JobStore

        return JobStore(self.db)

    def close(self) -> None:
        self.db.close()
