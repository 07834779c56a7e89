"""Persistence: the schema (SQLAlchemy metadata, Alembic migrations) and the stores over it.

All SQL of Tiercel lives in this package. ``Stores.open(path_or_url)`` gives one object per kind
of row: executions (with task runs and attempts), flows, processes, commands, logs,
metrics, triggers, the key/value store, auth (users, tokens, sessions, audit) and the encrypted secrets,
over one :class:`Database`: SQLite (a file path or ``sqlite:///path``, ``tiercel.backend.db``) or
PostgreSQL (``postgresql://user:password@host:port/db``, ``tiercel.backend.postgres``).
``Stores.of_home(home)`` opens ``$TIERCEL_DB`` (set by ``--db`` and the ``db:`` of tiercel.yaml),
else the home's ``tiercel.db``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
#: The environment variable naming the database (a URL or a path); ``--db`` and tiercel.yaml's ``db:`` set it.
DB_ENV = "TIERCEL_DB"


class SchemaMismatch(RuntimeError):
    """The database's schema revision is not the one this code expects; the message says what to run."""

    def __init__(self, message: str, current: str | None) -> None:
        super().__init__(message)
        self.current = current


_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s/]*)(?P<at>@)", re.IGNORECASE)
_PASSWORD_PARAM = re.compile(r"(?P<head>[?&]password=)[^&\s]*", re.IGNORECASE)


def mask_url(text: str) -> str:
    """*text* with the password of every URL in it replaced by ``***`` (``postgresql://u:***@host/db``)."""
    text = _PASSWORD.sub(lambda m: f"{m['head']}***{m['at']}", str(text))
    return _PASSWORD_PARAM.sub(lambda m: f"{m['head']}***", text)


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and "://" in target


def database_of_home(home: Path | None) -> str | Path:
    """What ``Stores.of_home`` opens: ``$TIERCEL_DB`` when set, else the home's ``tiercel.db``."""
    configured = os.environ.get(DB_ENV)
    if configured:
        return configured if is_url(configured) else Path(configured)
    from tiercel.home import default_home

    return Path(home or default_home()) / "tiercel.db"


def open_database(target: str | Path) -> Any:
    """The :class:`Database` at *target*: a path or ``sqlite:///path`` (SQLite), ``postgresql://…``."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from tiercel.backend.postgres import PostgresDatabase

        return PostgresDatabase(text)
    from tiercel.backend.db import Database

    if text.startswith("sqlite:///"):
        return Database(Path(text[len("sqlite:///"):]))
    if is_url(target):
        raise ValueError(f"unsupported database URL {mask_url(text)}: use a path, sqlite:///path or postgresql://…")
    return Database(Path(target))


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
    def open(cls, target: str | Path) -> Stores:
        """The stores of the database at *target*: a path, ``sqlite:///path`` or ``postgresql://…``
        (created at the schema's head when new; refused when its schema is behind or ahead)."""
        return cls.of(open_database(target))

    @classmethod
    def of_home(cls, home: Path | None = None) -> Stores:
        """The stores of ``$TIERCEL_DB`` when set, else of the home's SQLite file."""
        return cls.open(database_of_home(home))

    @staticmethod
    def exists(home: Path | None = None) -> bool:
        """Whether ``of_home`` would find a database (a configured URL always counts)."""
        target = database_of_home(home)
        return isinstance(target, str) or Path(target).is_file()

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
