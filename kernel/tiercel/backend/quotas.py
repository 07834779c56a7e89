"""Namespace quotas: at most N running executions per namespace, enforced across every process.

Set in ``tiercel.yaml`` (``namespaceQuotas: {team.heavy: 2}``) or ``TIERCEL_NAMESPACE_QUOTAS``
(the same map as YAML/JSON, or ``team.heavy=2,team.b=5``). A quota on ``team`` covers ``team``
and its children (``team.etl``). An execution created while its namespace is at its quota, or
while older executions of it wait, is QUEUED; when one ends, the oldest queued executions start
in creation order. The count and the decision happen in one write transaction (SQLite's
single writer; on PostgreSQL a transaction-scoped advisory lock per quota, ``Database.lock``).
"""

from __future__ import annotations

import os
from typing import Any

ENV = "TIERCEL_NAMESPACE_QUOTAS"
_RUNNING = "('CREATED', 'RUNNING', 'PAUSED', 'RETRYING', 'RESTARTED', 'KILLING')"


def parse(text: str | None) -> dict[str, int]:
    """The quotas from their environment form (YAML/JSON map, or ``ns=N,ns2=M``)."""
    if not text or not text.strip():
        return {}
    text = text.strip()
    data: Any
    if text.startswith("{"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = {}
        for part in text.split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"{ENV}: `{part}` is not NAMESPACE=N")
            data[name.strip()] = value.strip()
    if not isinstance(data, dict):
        raise ValueError(f"{ENV}: expected a map of namespace to a number of executions")
    quotas = {}
    for name, value in data.items():
        try:
            limit = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{ENV}: the quota of `{name}` must be a whole number, got {value!r}") from None
        if limit < 1:
            raise ValueError(f"{ENV}: the quota of `{name}` must be at least 1, got {limit}")
        quotas[str(name)] = limit
    return quotas


def from_env() -> dict[str, int]:
    return parse(os.environ.get(ENV))


def _under(key: str) -> tuple[str, list[Any]]:
    return "(namespace = ? OR namespace LIKE ? ESCAPE '\\')", [key, key.replace("%", r"\%").replace("_", r"\_") + ".%"]


class Quotas:
    """The quotas of this process's configuration, over one database."""

    def __init__(self, db: Any, quotas: dict[str, int] | None = None) -> None:
        self.db = db
        self.limits = from_env() if quotas is None else quotas

    def keys_for(self, namespace: str) -> list[str]:
        return sorted(k for k in self.limits if namespace == k or namespace.startswith(k + "."))

    def lock(self, key: str) -> None:
        """Serialize deciders of one quota (PostgreSQL); SQLite's write transaction already does."""
        self.db.lock("tiercel.quota", key)

    def running(self, key: str) -> int:
        where, params = _under(key)
        return int(self.db.one(f"SELECT COUNT(*) FROM executions WHERE {where} AND state IN {_RUNNING}",
                               params)[0])

    def waiting(self, key: str) -> int:
        where, params = _under(key)
        return int(self.db.one(f"SELECT COUNT(*) FROM executions WHERE {where} AND state = 'QUEUED'",
                               params)[0])

    def must_queue(self, namespace: str) -> str | None:
        """Call inside the creating transaction: the quota that makes a new execution wait, if any."""
        for key in self.keys_for(namespace):
            self.lock(key)
            if self.waiting(key) or self.running(key) >= self.limits[key]:
                return key
        return None

    def next_to_start(self, key: str, flow_allows: Any) -> list[str]:
        """Call inside a write transaction: promote the oldest queued executions the quota *key* has room for.

        ``flow_allows(namespace, flow_id)`` says whether the flow's own concurrency limit has room.
        Returns the ids now CREATED (their owner, if any, is told to start them).
        """
        self.lock(key)
        room = self.limits[key] - self.running(key)
        if room <= 0:
            return []
        where, params = _under(key)
        started: list[str] = []
        for execution_id, namespace, flow_id in self.db.query(
                f"SELECT id, namespace, flow_id FROM executions WHERE {where} AND state = 'QUEUED' "
                f"ORDER BY created_at LIMIT ?", [*params, room * 4]):
            if len(started) >= room:
                break
            others = [k for k in self.keys_for(namespace) if k != key]
            if any(self.running(k) >= self.limits[k] for k in others) or not flow_allows(namespace, flow_id):
                continue
            if self.db.execute("UPDATE executions SET state = 'CREATED' WHERE id = ? AND state = 'QUEUED'",
                               (execution_id,)) == 1:
                started.append(execution_id)
        return started

    def status(self) -> list[dict[str, Any]]:
        return [{"namespace": k, "limit": v, "running": self.running(k), "queued": self.waiting(k)}
                for k, v in sorted(self.limits.items())]
