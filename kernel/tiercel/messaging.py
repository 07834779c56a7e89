"""What message-broker plugins share: serdes, the ``from`` property, clear connection errors, settled acks.

The delivery contract every event source keeps (docs/plugins/event-sources.md):

- acknowledge (commit, delete) a message only in ``TriggerEvent.ack``, which the kernel awaits
  once the execution exists; ``nack`` hands it back when the execution could not be stored;
- give each event a dedupe ``key`` taken from the message (broker message id, sequence,
  offset), so a redelivery after a crash never makes a second execution;
- a payload the serde cannot read goes to a dead-letter place (or is logged and dropped),
  then is acknowledged: it never stops the trigger nor loops forever;
- a broker that cannot be reached raises :class:`BrokerUnavailable` naming its address (never
  a password): the kernel restarts the trigger with backoff.

Only the standard library is imported here: plugins stay cheap to discover.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal

from tiercel.api import RunContext, TaskError

#: STRING keeps text as is, JSON writes and reads JSON text, BYTES keeps raw bytes (base64 in outputs).
SerdeType = Literal["STRING", "JSON", "BYTES"]

SERDE_DESCRIPTION = "How payloads are written and read: STRING (UTF-8 text), JSON, or BYTES (base64 text in outputs)."
FROM_DESCRIPTION = ("What to send: one value, a list of values, or a `tiercel://` file of JSON lines (such as the "
                    "`uri` a Consume task writes).")


class BrokerUnavailable(TaskError, ConnectionError):
    """The broker cannot be reached: the message names its address, never its password."""


class DecodeError(ValueError):
    """A payload cannot be read with the configured serde."""


def redact(url: str) -> str:
    """*url* with its password (if any) replaced by ``***``."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    return urllib.parse.urlunsplit(parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@")))


def unreachable(what: str, url: str, exc: BaseException, hint: str = "check the address and that the server runs") -> BrokerUnavailable:
    """A :class:`BrokerUnavailable` saying which broker, where, and why."""
    return BrokerUnavailable(f"{what} at {redact(url)} is unreachable ({type(exc).__name__}: {exc}); {hint}")


def serialize(kind: str, value: Any) -> bytes:
    if kind == "BYTES":
        if isinstance(value, bytes):
            return value
        return base64.b64decode(value) if isinstance(value, str) else json.dumps(value, default=str).encode()
    if kind == "JSON" or not isinstance(value, str):
        return json.dumps(value, default=str).encode()
    return value.encode()


def deserialize(kind: str, raw: bytes | None) -> Any:
    """The payload as the serde reads it; :class:`DecodeError` (with the first bytes) when it cannot."""
    if raw is None:
        return None
    if kind == "BYTES":
        return base64.b64encode(raw).decode()
    try:
        text = raw.decode()
        return json.loads(text) if kind == "JSON" else text
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise DecodeError(f"{kind} serde: {exc} (first bytes {raw[:40]!r})") from None


def items(ctx: RunContext, source: Any) -> Iterator[Any]:
    """Values of a ``from`` property: a list, a single value, or a ``tiercel://`` file (JSON lines or one JSON array)."""
    if isinstance(source, list):
        yield from source
    elif isinstance(source, str) and source.startswith("tiercel://"):
        with ctx.open_file(source) as stream:
            data = stream.read()
        if data.lstrip().startswith(b"["):
            yield from json.loads(data)
            return
        for number, line in enumerate(data.splitlines(), 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise TaskError(f"property `from`: {source} line {number} is not JSON: {exc}") from None
    else:
        yield source


def json_lines(values: list[Any]) -> bytes:
    """Values as a JSON-lines file (what Consume tasks and batch triggers store)."""
    return b"".join(json.dumps(v, default=str).encode() + b"\n" for v in values)


def once(ack: Callable[[], Awaitable[None]], nack: Callable[[], Awaitable[None]] | None = None,
         ) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """An (ack, nack) pair where only the first call of either does anything.

    A duplicate delivery acknowledges again; a batch's client must be closed exactly once.
    """
    settled = False

    async def first_ack() -> None:
        nonlocal settled
        if not settled:
            settled = True
            await ack()

    async def first_nack() -> None:
        nonlocal settled
        if not settled:
            settled = True
            if nack is not None:
                await nack()

    return first_ack, first_nack


def check_cancelled() -> None:
    """Raise CancelledError if this task was cancelled (a client that swallowed it as a timeout)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
