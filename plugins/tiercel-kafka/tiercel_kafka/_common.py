"""What the Kafka tasks and triggers share: serdes, client settings, reading a batch, record files.

aiokafka is imported inside the functions that need it, so listing plugins stays cheap.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import struct
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from tiercel.api import RunContext, TaskError

#: Kestra's serde names. Numbers use Kafka's own big-endian serializers; BYTES travel as base64 text.
SerdeType = Literal["STRING", "JSON", "BYTES", "INTEGER", "SHORT", "LONG", "FLOAT", "DOUBLE", "UUID", "VOID"]
_NUMBERS = {"SHORT": ">h", "INTEGER": ">i", "LONG": ">q", "FLOAT": ">f", "DOUBLE": ">d"}


class BrokerUnavailable(TaskError, ConnectionError):
    """The broker cannot be reached: the message names its address. Triggers are restarted with backoff."""


class DecodeError(ValueError):
    """A record's key or value cannot be read with the configured deserializer."""


def check_cancelled() -> None:
    """Raise CancelledError if this task was cancelled (Python 3.11 can lose a cancel that
    races a completing wait; long loops call this on each turn)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def serialize(kind: str, value: Any) -> bytes | None:
    """A value from a flow as the bytes Kafka stores, the way Kafka's Java serializers write them."""
    if value is None or kind == "VOID":
        return None
    if kind == "JSON":
        return json.dumps(value, default=str).encode()
    if kind == "BYTES":
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        try:
            return base64.b64decode(str(value), validate=True)
        except ValueError:
            raise TaskError(f"BYTES serializer: {str(value)[:40]!r} is not base64 text") from None
    if kind in _NUMBERS:
        try:
            number = float(value) if kind in ("FLOAT", "DOUBLE") else int(value)
            return struct.pack(_NUMBERS[kind], number)
        except (ValueError, struct.error) as exc:
            raise TaskError(f"{kind} serializer: cannot write {value!r}: {exc}") from None
    if kind == "UUID":
        return str(uuid.UUID(str(value))).encode()
    return (value if isinstance(value, str) else json.dumps(value, default=str)).encode()


def deserialize(kind: str, raw: bytes | None) -> Any:
    """Bytes from Kafka as a value for expressions; raises :class:`DecodeError` when they do not fit."""
    if raw is None or kind == "VOID":
        return None
    try:
        if kind == "JSON":
            return json.loads(raw)
        if kind == "BYTES":
            return base64.b64encode(raw).decode()
        if kind in _NUMBERS:
            return struct.unpack(_NUMBERS[kind], raw)[0]
        text = raw.decode()
        return str(uuid.UUID(text)) if kind == "UUID" else text
    except (ValueError, struct.error) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DecodeError(f"{kind} deserializer: {exc} (first bytes {raw[:40]!r})") from None


def client_options(properties: dict[str, Any], client: type, strict: bool = True, **defaults: Any) -> dict[str, Any]:
    """Kestra-style ``properties`` (Java client names such as ``bootstrap.servers``) as aiokafka arguments.

    Not *strict* (a dead-letter producer built from a consumer's settings), settings the
    client does not take are left out, as Java clients do.
    """
    accepted = inspect.signature(client.__init__).parameters
    options = dict(defaults)
    for name, value in properties.items():
        arg = name.replace(".", "_").replace("-", "_")
        if not strict and (arg not in accepted or arg == "loop"):
            continue
        if arg not in accepted or arg in ("loop", "key_serializer", "value_serializer", "key_deserializer",
                                          "value_deserializer", "enable_auto_commit"):
            raise TaskError(f"property `properties.{name}` is not supported by the Kafka client; use Java client "
                            f"names such as bootstrap.servers, client.id, security.protocol, sasl.mechanism")
        default = accepted[arg].default
        if isinstance(value, str) and isinstance(default, bool):
            value = value.strip().lower() == "true"
        elif isinstance(value, str) and isinstance(default, int) and value.strip().lstrip("-").isdigit():
            value = int(value)
        elif arg == "acks" and isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        options[arg] = value
    options.setdefault("bootstrap_servers", "localhost:9092")
    return options


def servers(properties: dict[str, Any]) -> str:
    return str(properties.get("bootstrap.servers", "localhost:9092"))


def unreachable(properties: dict[str, Any], exc: BaseException) -> BrokerUnavailable:
    return BrokerUnavailable(f"Kafka broker at {servers(properties)} is unreachable ({type(exc).__name__}: {exc}); "
                             f"check `properties.bootstrap.servers` and that the broker runs")


async def ensure_reachable(properties: dict[str, Any]) -> None:
    """Raise :class:`BrokerUnavailable` unless one bootstrap server accepts a TCP connection.

    A realtime consumer calls this when idle: failing lets the trigger runtime log it and
    restart the consumer once the broker is back, from the committed offsets.
    """
    errors = []
    for address in servers(properties).split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            async with asyncio.timeout(3):  # not wait_for: on 3.11 it can swallow a cancel
                _, writer = await asyncio.open_connection(host or "localhost", int(port or 9092))
            writer.close()
            return
        except (OSError, TimeoutError, ValueError) as exc:
            errors.append(exc)
    raise unreachable(properties, errors[-1])


def headers_dict(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str | None]:
    """Record headers as a map (UTF-8 text; undecodable bytes as base64)."""
    out: dict[str, str | None] = {}
    for key, raw in headers or ():
        if raw is None:
            out[key] = None
            continue
        try:
            out[key] = raw.decode()
        except UnicodeDecodeError:
            out[key] = base64.b64encode(raw).decode()
    return out


def record_dict(record: Any, key_kind: str, value_kind: str) -> dict[str, Any]:
    """One consumer record as the JSON object written to files and exposed as ``trigger.*``."""
    return {
        "key": deserialize(key_kind, record.key),
        "value": deserialize(value_kind, record.value),
        "headers": headers_dict(record.headers),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
    }


def write_records(records: list[dict[str, Any]]) -> bytes:
    """Records as JSON lines: the file format of Consume, Trigger and Produce's ``from``."""
    return b"".join(json.dumps(r, default=str).encode() + b"\n" for r in records)


def read_records(ctx: RunContext, source: Any) -> Iterator[dict[str, Any]]:
    """Records from ``from``: a map, a list of maps, or a ``tiercel://`` file (JSON lines or one JSON array)."""
    if isinstance(source, dict):
        yield source
        return
    if isinstance(source, list):
        yield from source
        return
    if isinstance(source, str) and source.startswith("tiercel://"):
        with ctx.open_file(source) as stream:
            first = stream.read(1)
            if first == b"[":
                yield from json.loads(first + stream.read())
                return
            for number, line in enumerate(_lines(first, stream), 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError as exc:
                        raise TaskError(f"property `from`: {source} line {number} is not JSON: {exc}") from None
        return
    raise TaskError("property `from`: expected a record map, a list of records or a tiercel:// file URI")


def _lines(first: bytes, stream: Any) -> Iterator[bytes]:
    pending = first
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


class Consumer(BaseModel):
    """Where and how to read: the properties Consume and the polling Trigger share (Kestra's names)."""

    properties: dict[str, Any] = Field(default_factory=dict, description="Kafka client settings with Java names (`bootstrap.servers` defaults to localhost:9092), "
                                                   "e.g. `{bootstrap.servers: localhost:9092, security.protocol: SSL}`.")
    topic: str | list[str] | None = Field(None, description="Topic, or list of topics, to read.")
    topicPattern: str | None = Field(None, description="Regular expression of the topics to read, instead of `topic`.")
    partitions: list[int] | None = Field(None, description="Read only these partitions (all by default).")
    groupId: str | None = Field(None, description="Consumer group whose committed offsets say where to start; offsets are "
                                                  "committed to it after the read. Without it every run reads from `since` "
                                                  "or the beginning.")
    keyDeserializer: SerdeType = Field("STRING", description="How record keys are read: STRING, JSON, BYTES (as base64), INTEGER, SHORT, LONG, FLOAT, DOUBLE, UUID or VOID.")
    valueDeserializer: SerdeType = Field("STRING", description="How record values are read (same choices as `keyDeserializer`).")
    serdeProperties: dict[str, Any] = Field(default_factory=dict, description="Serde settings (such as `schema.registry.url`); kept for Kestra compatibility, unused by the built-in serdes.")
    since: datetime | None = Field(None, description="Start at the first record at or after this date when the group has no committed offset.")
    maxRecords: int | None = Field(None, ge=1, description="Stop after this many records.")
    maxDuration: timedelta | None = Field(None, description="Stop reading after this long (ISO-8601, e.g. PT30S).")


async def start_consumer(spec: Consumer, **extra: Any) -> Any:
    """An aiokafka consumer, started; a down broker becomes a :class:`BrokerUnavailable` naming it."""
    import aiokafka

    options = client_options(spec.properties, aiokafka.AIOKafkaConsumer, enable_auto_commit=False,
                             auto_offset_reset="earliest", group_id=spec.groupId, **extra)
    options["enable_auto_commit"] = False  # offsets move only when Tiercel commits them
    consumer = aiokafka.AIOKafkaConsumer(**options)
    try:
        await consumer.start()
    except Exception as exc:
        await consumer.stop()
        raise unreachable(spec.properties, exc) from exc
    return consumer


async def read_batch(spec: Consumer, consumer: Any, ctx: RunContext,
                     ranges: dict[str, list[int]] | None = None) -> tuple[list[dict[str, Any]], dict[Any, int], dict[Any, int]]:
    """Read records from the group's committed position up to what the topics hold now.

    With *ranges* (``"topic/partition": [start, end]``), read exactly those offsets again:
    that replays a batch whose execution may already exist, so its dedupe key matches.
    Returns the records (as dicts; undecodable ones carry ``error`` and the ``raw`` record),
    the start position and the next position of each partition read (what a commit stores).
    """
    import aiokafka

    if ranges is not None:
        partitions = [aiokafka.TopicPartition(t, int(p)) for t, p in (k.rsplit("/", 1) for k in ranges)]
    else:
        partitions = await _partitions(spec, consumer)
    if not partitions:
        return [], {}, {}
    consumer.assign(partitions)
    if ranges is not None:
        start = {tp: ranges[f"{tp.topic}/{tp.partition}"][0] for tp in partitions}
        end = {tp: ranges[f"{tp.topic}/{tp.partition}"][1] for tp in partitions}
    else:
        start = await _start_positions(spec, consumer, partitions)
        end = await consumer.end_offsets(partitions)
    for tp, offset in start.items():
        consumer.seek(tp, offset)
    # The end offsets are where to stop at the latest, when replaying; otherwise a partition is
    # done once it is past them and a fetch brings nothing more (some brokers, tansu among
    # them, report a high watermark short of a multi-record batch).
    todo = set(partitions) if ranges is None else {tp for tp in partitions if start[tp] < end[tp]}
    records: list[dict[str, Any]] = []
    position = dict(start)
    deadline = time.monotonic() + spec.maxDuration.total_seconds() if spec.maxDuration and ranges is None else None
    limit = spec.maxRecords if ranges is None else None
    while todo and (limit is None or len(records) < limit):
        check_cancelled()
        if deadline is not None and time.monotonic() >= deadline:
            break
        waiting = all(position[tp] >= end[tp] for tp in todo)
        batch = await consumer.getmany(*todo, timeout_ms=300 if waiting else 100,
                                       max_records=(limit - len(records)) if limit else None)
        for tp in list(todo):
            items = batch.get(tp, [])
            for record in items:
                if (ranges is not None and record.offset >= end[tp]) or (limit is not None and len(records) >= limit):
                    break
                try:
                    records.append(record_dict(record, spec.keyDeserializer, spec.valueDeserializer))
                except DecodeError as exc:
                    records.append({"topic": record.topic, "partition": record.partition, "offset": record.offset,
                                    "error": str(exc), "raw": record})
                position[tp] = record.offset + 1
            if position[tp] >= end[tp] and (ranges is not None or not items):
                todo.discard(tp)
    consumed = {tp: pos for tp, pos in position.items() if pos > start[tp]}
    return records, start, consumed


async def _partitions(spec: Consumer, consumer: Any) -> list[Any]:
    import re

    import aiokafka

    if spec.topicPattern:
        pattern = re.compile(spec.topicPattern)
        topics = sorted(t for t in await consumer.topics() if pattern.fullmatch(t))
    elif spec.topic:
        topics = [spec.topic] if isinstance(spec.topic, str) else list(spec.topic)
    else:
        raise TaskError("set `topic` (a name or a list) or `topicPattern`")
    out = []
    for topic in topics:
        found = consumer.partitions_for_topic(topic)
        if not found:
            await consumer.topics()  # first contact with this topic: fetch metadata
            found = consumer.partitions_for_topic(topic) or set()
        out += [aiokafka.TopicPartition(topic, p) for p in sorted(found) if spec.partitions is None or p in spec.partitions]
    return out


async def _start_positions(spec: Consumer, consumer: Any, partitions: list[Any]) -> dict[Any, int]:
    start: dict[Any, int] = {}
    beginning = await consumer.beginning_offsets(partitions)
    for tp in partitions:
        committed = await consumer.committed(tp) if spec.groupId else None
        if committed is not None and committed >= 0:
            start[tp] = committed
    missing = [tp for tp in partitions if tp not in start]
    if missing and spec.since is not None:
        stamp = int(spec.since.timestamp() * 1000)
        found = await consumer.offsets_for_times({tp: stamp for tp in missing})
        ends = await consumer.end_offsets(missing)
        for tp in missing:
            start[tp] = found[tp].offset if found.get(tp) else ends[tp]
    reset = str(spec.properties.get("auto.offset.reset", "earliest"))
    if any(tp not in start for tp in partitions) and reset == "latest":
        ends = await consumer.end_offsets(partitions)
        return {tp: start.get(tp, ends[tp]) for tp in partitions}
    return {tp: start.get(tp, beginning[tp]) for tp in partitions}


async def commit(consumer: Any, positions: dict[Any, int]) -> None:
    """Commit the next positions to the consumer's group (nothing to do without a group)."""
    if positions and consumer._group_id:
        await consumer.commit(positions)


async def dead_letter(properties: dict[str, Any], topic: str, raw: Any, error: str, producer: Any = None) -> None:
    """Send an undecodable record, as it was, to the dead-letter topic, with where it came from in headers."""
    import aiokafka

    own = producer is None
    if own:
        producer = aiokafka.AIOKafkaProducer(**client_options(properties, aiokafka.AIOKafkaProducer, strict=False))
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            raise unreachable(properties, exc) from exc
    try:
        headers = list(raw.headers or ()) + [
            ("tiercel.error", error.encode()[:1000]), ("tiercel.topic", raw.topic.encode()),
            ("tiercel.partition", str(raw.partition).encode()), ("tiercel.offset", str(raw.offset).encode())]
        await producer.send_and_wait(topic, raw.value, key=raw.key, headers=headers)
    finally:
        if own:
            await producer.stop()
