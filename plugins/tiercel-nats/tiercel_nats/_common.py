"""What the NATS tasks and triggers share: the connection, its errors, and the message <-> variables mapping."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tiercel.messaging import deserialize, unreachable


class Connection(BaseModel):
    """Where the server is and how to log in (mixed into every component)."""

    url: str = Field("nats://localhost:4222", description="Server URL, `nats://host:port` (`tls://` for TLS); "
                                                         "several comma-separated for a cluster.")
    username: str | None = Field(None, description="User name (or put it in `url`).")
    password: str | None = Field(None, description="Password; never logged.")
    token: str | None = Field(None, description="Authentication token; never logged.")


async def _quiet(exc: Exception) -> None:
    """nats-py logs every failed attempt with a traceback; the error we raise says it once."""


async def connect(c: Connection) -> Any:
    """A nats-py client that fails at once (no reconnect loop) with BrokerUnavailable naming the server.

    A server lost later closes the client: the trigger ends with an error and the kernel
    reconnects with backoff, rather than the client retrying silently.
    """
    import nats

    options: dict[str, Any] = {"user": c.username, "password": c.password, "token": c.token}
    try:
        return await nats.connect(c.url, allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0.2,
                                  connect_timeout=5, error_cb=_quiet, **{k: v for k, v in options.items() if v})
    except Exception as exc:  # NoServersError, refused authorization, timeouts
        raise unreachable("NATS", c.url, exc) from exc


def lost(c: Connection, exc: BaseException) -> Exception:
    """An error of a running client: a closed connection becomes BrokerUnavailable, anything else stays."""
    import nats.errors

    if isinstance(exc, (nats.errors.ConnectionClosedError, nats.errors.NoRespondersError, nats.errors.StaleConnectionError,
                        ConnectionError, OSError)):
        return unreachable("NATS", c.url, exc)
    return exc


def message_variables(msg: Any, serde: str) -> dict[str, Any]:
    """What an execution sees of a JetStream message (``trigger.*``, or a line of a Consume file)."""
    meta = msg.metadata
    return {"value": deserialize(serde, msg.data), "subject": msg.subject, "headers": dict(msg.headers or {}),
            "stream": meta.stream, "sequence": meta.sequence.stream, "delivered": meta.num_delivered,
            "timestamp": meta.timestamp.isoformat() if meta.timestamp else None}


async def stream_for(js: Any, subject: str, stream: str | None) -> str:
    """The JetStream stream that stores *subject* (given, or looked up), with a clear error when there is none."""
    if stream:
        return stream
    try:
        return await js.find_stream_name_by_subject(subject)
    except Exception as exc:
        raise ValueError(f"no JetStream stream stores subject `{subject}` ({exc}): create one "
                         f"(`nats stream add`), or set `stream`") from None
