"""What the Redis tasks and triggers share: the connection, serdes, item lists, rendering.

redis-py is imported inside the functions that need it, so listing plugins stays cheap.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any, Literal

from tiercel.api import TaskError
from tiercel.messaging import items, json_lines  # noqa: F401  (re-exported for the tasks and triggers)

#: Kestra's serde names: STRING keeps text as is, JSON writes and reads JSON text.
SerdeType = Literal["STRING", "JSON"]

URL_DESCRIPTION = "Redis connection URL, e.g. `redis://:password@localhost:6379/0` (`rediss://` for TLS)."
SERDE_DESCRIPTION = "How values are written and read: STRING (text as is) or JSON."


class BrokerUnavailable(TaskError, ConnectionError):
    """Redis cannot be reached: the message names its address (never the password)."""


class DecodeError(ValueError):
    """A value cannot be read with the configured serde."""


def redact(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    return urllib.parse.urlunsplit(parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@")))


async def connect(url: str) -> Any:
    """A redis.asyncio client that answered PING; a down server becomes :class:`BrokerUnavailable`."""
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    client = aioredis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    try:
        await client.ping()
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        await client.aclose()
        raise unreachable(url, exc) from exc
    return client


def unreachable(url: str, exc: BaseException) -> BrokerUnavailable:
    return BrokerUnavailable(f"Redis at {redact(url)} is unreachable ({type(exc).__name__}: {exc}); check `url` "
                             f"and that the server runs")


def check_cancelled() -> None:
    """Raise CancelledError if this task was cancelled.

    On Python 3.11 a cancel that lands as a blocking command's own timeout expires can come
    back from redis-py as a plain timeout (None); long loops call this after each one.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def serialize(kind: str, value: Any) -> str:
    if kind == "JSON":
        return json.dumps(value, default=str)
    return value if isinstance(value, str) else json.dumps(value, default=str)


def deserialize(kind: str, raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        return json.loads(text) if kind == "JSON" else text
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise DecodeError(f"{kind} serde: {exc} (first bytes {raw[:40]!r})") from None
