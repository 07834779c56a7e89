"""The key/value store's tasks (``core.kv.*``, Kestra's ``io.kestra.plugin.core.kv.*``) and its typed values.

Values keep a type (STRING, NUMBER, BOOLEAN, DATETIME, DATE, DURATION, JSON), checked when
written; dates and durations are stored as ISO-8601 text.
"""

from __future__ import annotations

import fnmatch
import json
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from tiercel.api import Example, RunContext, Task, TaskError

KVType = Literal["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"]
TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")


def typed(value: Any, kind: str) -> Any:
    """*value* as a KV value of *kind*; ValueError saying what was expected."""
    kind = kind.upper()
    if kind == "STRING":
        return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    if kind == "NUMBER":
        if isinstance(value, bool):
            raise ValueError(f"a NUMBER was expected, got the boolean {value}")
        if isinstance(value, (int, float)):
            return value
        try:
            text = str(value).strip()
            return int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise ValueError(f"a NUMBER was expected, got {value!r}") from None
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("true", "false"):
            return str(value).strip().lower() == "true"
        raise ValueError(f"a BOOLEAN (true or false) was expected, got {value!r}")
    if kind == "DATETIME":
        if isinstance(value, datetime):
            return value.isoformat()
        try:
            return datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")).isoformat()
        except ValueError:
            raise ValueError(f"a DATETIME (ISO-8601, e.g. 2024-05-01T10:00:00Z) was expected, got {value!r}") from None
    if kind == "DATE":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value.isoformat()
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise ValueError(f"a DATE (ISO-8601, e.g. 2024-05-01) was expected, got {value!r}") from None
    if kind == "DURATION":
        from pydantic import TypeAdapter, ValidationError

        if isinstance(value, timedelta):
            return _iso_duration(value)
        try:
            TypeAdapter(timedelta).validate_python(str(value).strip())
        except ValidationError:
            raise ValueError(f"a DURATION (ISO-8601, e.g. PT30M) was expected, got {value!r}") from None
        return str(value).strip()
    if kind == "JSON":
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value  # a plain string is valid JSON text once quoted
        return value
    raise ValueError(f"unknown KV type {kind!r}; one of {', '.join(TYPES)}")


def _iso_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"PT{int(seconds) if seconds == int(seconds) else seconds}S"


class Set(Task):
    """Store a value in the namespace's key/value store, typed, optionally expiring.

    Concurrent writes of one key never lose one that reported success: the last write wins,
    and with ``overwrite: false`` exactly one writer creates the key (the others fail).
    """

    type: ClassVar[str] = "core.kv.Set"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.kv.Set",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Remember when the flow last ran, for a day",
            """\
id: kv_set_example
namespace: company.team
tasks:
  - id: remember
    type: core.kv.Set
    key: last_run
    value: "{{ execution.startDate }}"
    kvType: DATETIME
    ttl: P1D
  - id: show
    type: core.Log
    message: "last run: {{ kv('last_run') }}"
""",
        )
    ]

    key: str = Field(description="The key.")
    value: Any = Field(description="The value; checked against `kvType`.")
    kvType: KVType = Field(
        "JSON", description="Type of the value: STRING, NUMBER, BOOLEAN, DATETIME, DATE, DURATION or JSON."
    )
    namespace: str | None = Field(None, description="Namespace of the store; default: the flow's.")
    overwrite: bool = Field(True, description="Replace an existing value; when false, an existing key fails the task.")
    ttl: timedelta | None = Field(None, description="Time to live (ISO-8601 duration); the value expires after it.")

    def run(self, ctx: RunContext) -> None:
        namespace = self.namespace or ctx.namespace
        try:
            value = typed(self.value, self.kvType)
        except ValueError as exc:
            raise TaskError(f"key `{self.key}`: {exc}") from None
        ttl = self.ttl.total_seconds() if self.ttl else None
        if not ctx.kv.set(namespace, self.key, value, ttl=ttl, type=self.kvType, overwrite=self.overwrite):
            raise TaskError(f"key `{self.key}` already exists in namespace `{namespace}` and overwrite is false")


class Get(Task):
    """Read a value of the key/value store (`outputs.<id>.value`)."""

    type: ClassVar[str] = "core.kv.Get"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.kv.Get",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Read a counter, 0 when missing",
            """\
id: kv_get_example
namespace: company.team
tasks:
  - id: counter
    type: core.kv.Get
    key: counter
  - id: show
    type: core.Log
    message: "counter is {{ outputs.counter.value or 0 }}"
""",
        )
    ]

    key: str = Field(description="The key.")
    namespace: str | None = Field(None, description="Namespace of the store; default: the flow's.")
    errorOnMissing: bool = Field(False, description="Fail when the key is missing or expired (else `value` is null).")

    def run(self, ctx: RunContext) -> dict[str, Any]:
        namespace = self.namespace or ctx.namespace
        entry = ctx.kv.entry(namespace, self.key)
        if entry is None and self.errorOnMissing:
            raise TaskError(f"key `{self.key}` not found in namespace `{namespace}`")
        return {"value": None if entry is None else entry.value}


class GetKeys(Task):
    """List the keys of the key/value store, optionally under a prefix (`outputs.<id>.keys`)."""

    type: ClassVar[str] = "core.kv.GetKeys"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.kv.GetKeys",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Keys of the namespace starting with `user_`",
            """\
id: kv_getkeys_example
namespace: company.team
tasks:
  - id: users
    type: core.kv.GetKeys
    prefix: user_
  - id: show
    type: core.Log
    message: "{{ outputs.users['keys'] | length }} users"
""",
        )
    ]

    prefix: str = Field("", description="Only keys starting with this.")
    namespace: str | None = Field(None, description="Namespace of the store; default: the flow's.")

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return {"keys": [e.key for e in ctx.kv.entries(self.namespace or ctx.namespace, self.prefix)]}


class Delete(Task):
    """Delete a key of the key/value store (`outputs.<id>.deleted` says whether it existed)."""

    type: ClassVar[str] = "core.kv.Delete"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.kv.Delete",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Forget a key",
            """\
id: kv_delete_example
namespace: company.team
tasks:
  - id: forget
    type: core.kv.Delete
    key: last_run
""",
        )
    ]

    key: str = Field(description="The key.")
    namespace: str | None = Field(None, description="Namespace of the store; default: the flow's.")
    errorOnMissing: bool = Field(False, description="Fail when the key does not exist.")

    def run(self, ctx: RunContext) -> dict[str, Any]:
        namespace = self.namespace or ctx.namespace
        deleted = ctx.kv.delete(namespace, self.key)
        if not deleted and self.errorOnMissing:
            raise TaskError(f"key `{self.key}` not found in namespace `{namespace}`")
        return {"deleted": deleted}


class PurgeKV(Task):
    """Delete keys of one or more namespaces: the expired ones (default) or all matching a pattern."""

    type: ClassVar[str] = "core.kv.PurgeKV"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.kv.PurgeKV",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Drop expired keys, and every `tmp_` key",
            """\
id: kv_purge_example
namespace: company.team
tasks:
  - id: expired
    type: core.kv.PurgeKV
  - id: scratch
    type: core.kv.PurgeKV
    keyPattern: "tmp_*"
    expiredOnly: false
""",
        )
    ]

    namespaces: list[str] | None = Field(None, description="Namespaces to purge; default: the flow's.")
    keyPattern: str | None = Field(None, description="Only keys matching this glob (`tmp_*`).")
    expiredOnly: bool = Field(True, description="Only expired keys; false deletes every matching key.")

    def run(self, ctx: RunContext) -> dict[str, Any]:
        size = 0
        for namespace in self.namespaces or [ctx.namespace]:
            if self.keyPattern is None:
                size += ctx.kv.purge(namespace, expired_only=self.expiredOnly)
                continue
            keys = ctx.kv.all_keys(namespace, expired_only=self.expiredOnly)
            for key in fnmatch.filter(keys, self.keyPattern):
                size += ctx.kv.delete(namespace, key)
        return {"size": size}
