"""End to end through a running `tiercel server`: 1,000 JetStream messages with a SIGKILL mid-way; a server
that is down at start, then restarted.

The server is a subprocess on a free port; executions are counted in its SQLite database.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid

import pytest

from tiercel.testing import TiercelServer, free_port, wait_triggered
from tiercel.testing.harness import triggered

pytestmark = pytest.mark.slow


def _flow(flow_id: str, url: str, subject: str) -> str:
    return f"""
id: {flow_id}
namespace: e2e.nats
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value.n }}}}"
triggers:
  - id: messages
    type: nats.RealtimeTrigger
    url: "{url}"
    subject: "{subject}.>"
    serdeType: JSON
    ackWait: PT2S
"""


async def _publish(url: str, name: str, numbers: range, create: bool = False) -> int:
    """Publish ``{"n": n}`` on `<name>.new` (creating the stream); the consumers' unacknowledged count."""
    import nats
    from nats.js.api import StreamConfig

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        if create:
            await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
        for n in numbers:
            await js.publish(f"{name}.new", json.dumps({"n": n}).encode())
        consumers = await js.consumers_info(name)
        return sum(c.num_ack_pending + c.num_pending for c in consumers)
    finally:
        await nc.close()


def test_thousand_messages_exactly_once_across_a_sigkill(nats_url, tmp_path):
    name, flow_id = f"e2e{uuid.uuid4().hex[:8]}", "thousand"
    home = tmp_path / "home"
    asyncio.run(_publish(nats_url, name, range(500), create=True))  # two halves, the kill between
    server = TiercelServer(home).start()
    try:
        server.deploy(_flow(flow_id, nats_url, name))
        wait_triggered(home, flow_id, 100, 60, server, interval=0.01)
        server.stop(signal.SIGKILL)  # executions created whose messages were never acknowledged
        killed_at = len(triggered(home, flow_id))
        assert 0 < killed_at <= 500
        asyncio.run(_publish(nats_url, name, range(500, 1000)))  # arrives while the server is down
        server = TiercelServer(home).start()
        wait_triggered(home, flow_id, 1000, 120, server)
        time.sleep(2.5)  # past ackWait: anything redelivered has had time to show up
        found = triggered(home, flow_id)
        left = asyncio.run(_publish(nats_url, name, range(0)))
    finally:
        server.stop()
    numbers = sorted(v["value"]["n"] for v in found)
    assert numbers == list(range(1000)), f"{len(numbers)} executions, {len(set(numbers))} distinct (killed at {killed_at})"
    assert left == 0  # every message acknowledged


def test_server_down_at_start_then_up_then_restarted(tmp_path):
    """The trigger logs a clear error naming the server, backs off, and resumes when it is back."""
    from tiercel.testing import services

    port = free_port()
    url, name, flow_id = f"nats://127.0.0.1:{port}", "orders", "down"
    home = tmp_path / "home"
    server = TiercelServer(home).start()
    nats_server = None
    try:
        server.deploy(_flow(flow_id, url, name))
        deadline = time.monotonic() + 15
        while f"NATS at {url} is unreachable" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.1)
        nats_server = services.nats_url(port=port)
        asyncio.run(_publish(url, name, range(5), create=True))
        assert len(wait_triggered(home, flow_id, 5, 30, server)) == 5  # resumed after the backoff
        nats_server.restart(kill=True)  # JetStream keeps its store: the consumer and the stream survive
        asyncio.run(_publish(url, name, range(100, 105)))
        found = wait_triggered(home, flow_id, 10, 60, server)
        assert sorted(v["value"]["n"] for v in found) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
        assert server.log.read_text().count(f"NATS at {url} is unreachable") < 12  # backoff: not one line per attempt
        assert server.alive()
    finally:
        server.stop()
        if nats_server is not None:
            nats_server.stop()
