"""The storage schema, as SQLAlchemy metadata: the single source for Alembic migrations.

Task runs, attempts, logs and jobs are rows of their own, never one execution document
rewritten on every step. ``jobs`` and ``events`` hold only live rows (deleted once applied),
so they stay small; history lives in executions, task_runs, attempts and logs.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

metadata = MetaData()

flows = Table(
    "flows", metadata,
    Column("namespace", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("hash", Text, nullable=False),
    Column("deleted", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("namespace", "id", "revision"),
)

flow_sources = Table(
    "flow_sources", metadata,
    Column("hash", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("path", Text),
)

executions = Table(
    "executions", metadata,
    Column("id", Text, primary_key=True),
    Column("namespace", Text, nullable=False),
    Column("flow_id", Text, nullable=False),
    Column("flow_revision", Integer),
    Column("flow_hash", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("inputs", Text),
    Column("outputs", Text),
    Column("labels", Text),
    Column("trigger", Text),
    Column("parent_id", Text),
    Column("parent_task_run_id", Text),
    Column("original_id", Text),
    Column("dedupe_key", Text, unique=True),
    Column("error", Text),
    Column("owner", Text),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("updated_at", Float, nullable=False),
    Index("ix_executions_flow", "namespace", "flow_id", "state"),
    Index("ix_executions_state", "state"),
    Index("ix_executions_created", "created_at"),
    Index("ix_executions_owner", "owner"),
)

task_runs = Table(
    "task_runs", metadata,
    Column("id", Text, primary_key=True),
    Column("execution_id", Text, nullable=False),
    Column("parent_id", Text),
    Column("task_id", Text, nullable=False),
    Column("value", Text),
    Column("iteration", Integer),
    Column("state", Text, nullable=False),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("outputs", Text),
    Column("data", Text),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("seq", Integer, nullable=False),
    Index("ix_task_runs_execution", "execution_id", "seq"),
)

attempts = Table(
    "attempts", metadata,
    Column("task_run_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("execution_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("worker", Text),
    Column("error", Text),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("resources", Text),  # JSON: what the attempt started outside its worker (RunContext.track)
    PrimaryKeyConstraint("task_run_id", "attempt"),
    Index("ix_attempts_execution", "execution_id"),
)

logs = Table(
    "logs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", Text, nullable=False),
    Column("task_run_id", Text),
    Column("task_id", Text),
    Column("attempt", Integer),
    Column("level", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("ts", Float, nullable=False),
    Index("ix_logs_execution", "execution_id", "id"),
)

metrics = Table(
    "metrics", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", Text, nullable=False),
    Column("task_run_id", Text),
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("value", Float, nullable=False),
    Column("tags", Text),
    Column("ts", Float, nullable=False),
    Index("ix_metrics_execution", "execution_id"),
)

jobs = Table(  # the queue between executors and workers: live rows only, deleted when the result is written
    "jobs", metadata,
    Column("task_run_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("execution_id", Text, nullable=False),
    Column("worker", Text),  # the lease owner (a process id) once claimed
    Column("created_at", Float, nullable=False),
    Column("claimed_at", Float),
    Column("queue", Text, nullable=False, server_default="default"),
    Column("payload", Text),
    Column("state", Text, nullable=False, server_default="queued"),  # queued | running | cancel
    Column("lease_until", Float),
    PrimaryKeyConstraint("task_run_id", "attempt"),
    Index("ix_jobs_execution", "execution_id"),
    Index("ix_jobs_claim", "queue", "state", "created_at"),
)

results = Table(  # what workers report (and LOST from the lease reaper); deleted when the executor applies it
    "results", metadata,
    Column("task_run_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("execution_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("outputs", Text),
    Column("error", Text),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("worker", Text),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("task_run_id", "attempt"),
    Index("ix_results_execution", "execution_id"),
)

commands = Table(  # kill/resume/restart/start sent to an execution owned by another process; deleted once applied
    "commands", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("payload", Text),
    Column("created_at", Float, nullable=False),
    Index("ix_commands_execution", "execution_id"),
)

triggers = Table(
    "triggers", metadata,
    Column("namespace", Text, nullable=False),
    Column("flow_id", Text, nullable=False),
    Column("trigger_id", Text, nullable=False),
    Column("type", Text),
    Column("next_at", Float),
    Column("last_at", Float),
    Column("last_execution_id", Text),
    Column("disabled", Integer, nullable=False, server_default="0"),
    Column("state", Text),
    Column("updated_at", Float),
    PrimaryKeyConstraint("namespace", "flow_id", "trigger_id"),
)

trigger_ticks = Table(
    "trigger_ticks", metadata,
    Column("namespace", Text, nullable=False),
    Column("flow_id", Text, nullable=False),
    Column("trigger_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("execution_id", Text),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("namespace", "flow_id", "trigger_id", "key"),
)

kv = Table(
    "kv", metadata,
    Column("namespace", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("value", Text),
    Column("type", Text),  # STRING, NUMBER, BOOLEAN, DATETIME, DATE, DURATION or JSON (NULL: JSON)
    Column("expires_at", Float),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("namespace", "key"),
)

secrets = Table(  # the encrypted secret store: AES-GCM (nonce + ciphertext), never a value in clear
    "secrets", metadata,
    Column("namespace", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("namespace", "name"),
)

processes = Table(  # every live Tiercel process, with its heartbeat (one row per process, not per job)
    "processes", metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False, server_default="server"),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", Text),
    Column("started_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("slots", Integer),
    Column("busy", Integer),
    Column("queues", Text),  # JSON list, for workers
)

users = Table(  # people who log in; the password as an argon2 hash, never in clear
    "users", metadata,
    Column("name", Text, primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("namespace", Text, nullable=False, server_default=""),  # "" grants every namespace
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

tokens = Table(  # API tokens: the id is public, only a hash of the secret is kept
    "tokens", metadata,
    Column("id", Text, primary_key=True),
    Column("secret_hash", Text, nullable=False),
    Column("name", Text),
    Column("role", Text, nullable=False),
    Column("namespace", Text, nullable=False, server_default=""),
    Column("created_by", Text),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("revoked_at", Float),
    Column("last_used_at", Float),
)

sessions = Table(  # UI logins: keyed by a hash of the cookie's value
    "sessions", metadata,
    Column("id_hash", Text, primary_key=True),
    Column("username", Text, nullable=False),
    Column("csrf", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

audit = Table(  # every state-changing API call: who, when, what, from where, and the answer
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("actor", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("namespace", Text),
    Column("status", Integer, nullable=False),
    Column("client", Text),
    Index("ix_audit_ts", "ts"),
)

__all__ = ["metadata"]
