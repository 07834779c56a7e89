"""What the Pulsar tasks and triggers share: the client, serdes, subscriptions, reading a batch.

pulsar-client is imported inside the functions that need it, so listing plugins stays cheap.
Its calls block (a C++ client underneath), so they run in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from tiercel.api import RunContext, TaskError

SerdeType = Literal["STRING", "JSON", "BYTES"]
SubscriptionType = Literal["Exclusive", "Shared", "Failover", "Key_Shared"]

URI_DESCRIPTION = "Pulsar service URL, e.g. `pulsar://localhost:6650` (`pulsar+ssl://` for TLS; several hosts separated by commas)."
TOKEN_DESCRIPTION = "JWT authentication token (use `{{ secret('PULSAR_TOKEN') }}`)."

#: The C++ client logs through this logger; its chatter stays below WARNING.
CLIENT_LOG = logging.getLogger("tiercel_pulsar.client")
CLIENT_LOG.setLevel(logging.WARNING)


class BrokerUnavailable(TaskError, ConnectionError):
    """The broker cannot be reached: the message names its address."""


class DecodeError(ValueError):
    """A message's payload cannot be read with the configured deserializer."""


def check_cancelled() -> None:
    """Raise CancelledError if this task was cancelled (Python 3.11 can lose a cancel that
    races a completing wait; long loops call this on each turn)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def serialize(kind: str, value: Any) -> bytes:
    if kind == "JSON":
        return json.dumps(value, default=str).encode()
    if kind == "BYTES":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        try:
            return base64.b64decode(str(value), validate=True)
        except ValueError:
            raise TaskError(f"BYTES serializer: {str(value)[:40]!r} is not base64 text") from None
    return (value if isinstance(value, str) else json.dumps(value, default=str)).encode()


def deserialize(kind: str, raw: bytes) -> Any:
    try:
        if kind == "JSON":
            return json.loads(raw)
        if kind == "BYTES":
            return base64.b64encode(raw).decode()
        return raw.decode()
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise DecodeError(f"{kind} deserializer: {exc} (first bytes {raw[:40]!r})") from None


def message_id(message: Any) -> str:
    mid = message.message_id()
    return f"{mid.ledger_id()}:{mid.entry_id()}:{mid.partition()}:{mid.batch_index()}"


def message_dict(message: Any, kind: str) -> dict[str, Any]:
    """A received message as the JSON object written to files and exposed as ``trigger.*``."""
    return {
        "key": message.partition_key() or None,
        "value": deserialize(kind, message.data()),
        "properties": dict(message.properties()),
        "topic": message.topic_name(),
        "messageId": message_id(message),
        "eventTime": message.event_timestamp() or None,
        "publishTime": message.publish_timestamp(),
        "redeliveryCount": message.redelivery_count(),
    }


async def client(uri: str, token: str | None) -> Any:
    """A pulsar client, once the broker accepts a TCP connection (so a down broker fails in a moment, named)."""
    import pulsar

    await reachable(uri)
    auth = pulsar.AuthenticationToken(token) if token else None
    return pulsar.Client(uri, authentication=auth, operation_timeout_seconds=15, connection_timeout_ms=5000,
                         logger=CLIENT_LOG)


async def reachable(uri: str) -> None:
    parsed = urllib.parse.urlsplit(uri)
    hosts = parsed.netloc.rsplit("@", 1)[-1].split(",")
    errors = []
    for host in hosts:
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        default = 6651 if parsed.scheme.endswith("+ssl") else 6650
        try:
            async with asyncio.timeout(5):  # not wait_for: on 3.11 it can swallow a cancel
                _, writer = await asyncio.open_connection(name or host, int(port or default))
            writer.close()
            return
        except (OSError, asyncio.TimeoutError, ValueError) as exc:
            errors.append(f"{host}: {exc or type(exc).__name__}")
    raise BrokerUnavailable(f"Pulsar broker at {uri} is unreachable ({'; '.join(errors)}); check `uri` and that the broker runs")


def failed(uri: str, what: str, exc: BaseException) -> BrokerUnavailable:
    return BrokerUnavailable(f"Pulsar broker at {uri}: {what} failed ({type(exc).__name__}: {exc})")


def consumer_type(name: str) -> Any:
    import pulsar

    return {"Exclusive": pulsar.ConsumerType.Exclusive, "Shared": pulsar.ConsumerType.Shared,
            "Failover": pulsar.ConsumerType.Failover, "Key_Shared": pulsar.ConsumerType.KeyShared}[name]


def json_lines(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, default=str).encode() + b"\n" for r in records)


def read_records(ctx: RunContext, source: Any) -> Iterator[Any]:
    """Messages from ``from``: a map, a list of maps, or a ``tiercel://`` file (JSON lines or one JSON array)."""
    if isinstance(source, dict):
        yield source
    elif isinstance(source, list):
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
        raise TaskError("property `from`: expected a message map, a list of them or a tiercel:// file URI")


class Subscriber(BaseModel):
    """Where and how to read: the properties Consume and the triggers share (Kestra's names)."""

    uri: str = Field("pulsar://localhost:6650", description=URI_DESCRIPTION)
    authenticationToken: str | None = Field(None, description=TOKEN_DESCRIPTION)
    topic: str | list[str] = Field(description="Topic, or list of topics, to read (`persistent://tenant/namespace/name` or a short name).")
    subscriptionName: str = Field(description="Subscription: it remembers which messages were acknowledged.")
    subscriptionType: SubscriptionType = Field("Exclusive", description="Exclusive, Shared, Failover or Key_Shared.")
    initialPosition: Literal["Earliest", "Latest"] = Field("Earliest", description="Where a new subscription starts.")
    deserializer: SerdeType = Field("STRING", description="How payloads are read: STRING, JSON or BYTES (as base64).")
    consumerName: str | None = Field(None, description="Name of the consumer, shown in the broker's statistics.")


def subscribe(client: Any, spec: Subscriber, **extra: Any) -> Any:
    import pulsar

    topics = [spec.topic] if isinstance(spec.topic, str) else list(spec.topic)
    position = pulsar.InitialPosition.Earliest if spec.initialPosition == "Earliest" else pulsar.InitialPosition.Latest
    try:
        return client.subscribe(topics if len(topics) > 1 else topics[0], spec.subscriptionName,
                                consumer_type=consumer_type(spec.subscriptionType), initial_position=position,
                                consumer_name=spec.consumerName, **extra)
    except Exception as exc:
        raise failed(spec.uri, f"subscribing `{spec.subscriptionName}` to {topics}", exc) from exc


async def receive_batch(consumer: Any, pollDuration: timedelta, maxRecords: int | None,
                        maxDuration: timedelta | None) -> list[Any]:
    """Messages until none comes for `pollDuration`, or `maxRecords`, or `maxDuration` has passed.

    Receives never block (`receive(0)`, then a short sleep when nothing is queued): a
    cancelled run leaves no thread waiting on the broker.
    """
    import pulsar

    messages: list[Any] = []
    now = time.monotonic()
    deadline = now + maxDuration.total_seconds() if maxDuration else None
    quiet_until = now + pollDuration.total_seconds()
    while maxRecords is None or len(messages) < maxRecords:
        now = time.monotonic()
        end = quiet_until if deadline is None else min(quiet_until, deadline)
        if now >= end:
            break
        try:
            messages.append(consumer.receive(0))
            quiet_until = time.monotonic() + pollDuration.total_seconds()
        except pulsar.Timeout:
            await asyncio.sleep(min(0.01, end - now))
    return messages


async def dead_letter(client: Any, topic: str, message: Any, error: str) -> None:
    """Send an undecodable message, as it was, to the dead-letter topic with where it came from."""
    producer = await asyncio.to_thread(client.create_producer, topic)
    try:
        properties = {**message.properties(), "tiercel.error": error[:1000], "tiercel.topic": message.topic_name(),
                      "tiercel.messageId": message_id(message)}
        await asyncio.to_thread(producer.send, message.data(), properties=properties,
                                partition_key=message.partition_key() or None)
    finally:
        producer.close()
