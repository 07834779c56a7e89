"""What the AMQP tasks and triggers share: the connection and the message <-> variables mapping."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tiercel.messaging import deserialize, unreachable

URL = Field("amqp://guest:guest@localhost:5672/", description="AMQP URL: `amqp://user:password@host:port/vhost` "
                                                               "(`amqps://` for TLS); the password is never logged.")


async def connect(url: str) -> Any:
    """An aio-pika connection; a broker that does not answer becomes BrokerUnavailable naming it."""
    import aio_pika

    try:
        return await aio_pika.connect(url, timeout=10)
    except (OSError, ConnectionError, TimeoutError) as exc:
        raise unreachable("RabbitMQ", url, exc) from exc
    except Exception as exc:  # aiormq's own errors (refused login, unknown vhost)
        if type(exc).__module__.startswith(("aiormq", "aio_pika", "pamqp")):
            raise unreachable("RabbitMQ", url, exc, "check the URL, credentials and virtual host") from exc
        raise


def message_variables(message: Any, serde: str) -> dict[str, Any]:
    """What an execution sees of a message (``trigger.*``, or a line of a Consume file)."""
    return {
        "value": deserialize(serde, message.body),
        "messageId": message.message_id,
        "routingKey": message.routing_key,
        "exchange": message.exchange,
        "headers": {k: v.decode() if isinstance(v, bytes) else v for k, v in (message.headers or {}).items()},
        "contentType": message.content_type,
        "correlationId": message.correlation_id,
        "timestamp": message.timestamp.isoformat() if message.timestamp else None,
        "redelivered": bool(message.redelivered),
    }
