"""End to end through a running `tiercel server`: 1,000 messages with a SIGKILL mid-way; a broker that refuses,
then drops, the trigger's connection.

The server is a subprocess on a free port; executions are counted in its SQLite database.
RabbitMQ is the machine's own: the second test works in a virtual host of its own, so closing
its connections touches no one else.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from tiercel.testing import TiercelServer, wait_triggered
from tiercel.testing.harness import triggered

pytestmark = pytest.mark.slow


def _flow(flow_id: str, url: str, queue: str) -> str:
    return f"""
id: {flow_id}
namespace: e2e.amqp
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value.n }}}}"
triggers:
  - id: messages
    type: amqp.RealtimeTrigger
    url: "{url}"
    queue: {queue}
    serdeType: JSON
"""


async def _publish(url: str, queue: str, numbers: range, declare: bool = False) -> int:
    """Publish ``{"n": n}`` for each number (message id ``n``); the queue's ready count afterwards."""
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        if declare:
            await channel.declare_queue(queue, durable=False, arguments={"x-expires": 120_000})
        for n in numbers:
            await channel.default_exchange.publish(aio_pika.Message(json.dumps({"n": n}).encode(), message_id=str(n)),
                                                   routing_key=queue)
        return (await channel.declare_queue(queue, passive=True)).declaration_result.message_count


def test_thousand_messages_exactly_once_across_a_sigkill(amqp_url, tmp_path):
    queue, flow_id = f"e2e-{uuid.uuid4().hex[:8]}", "thousand"
    home = tmp_path / "home"
    asyncio.run(_publish(amqp_url, queue, range(500), declare=True))  # two halves, the kill between
    server = TiercelServer(home).start()
    try:
        server.deploy(_flow(flow_id, amqp_url, queue))
        wait_triggered(home, flow_id, 100, 60, server, interval=0.01)
        server.stop(signal.SIGKILL)  # executions created whose messages were never acknowledged
        killed_at = len(triggered(home, flow_id))
        assert 0 < killed_at <= 500
        asyncio.run(_publish(amqp_url, queue, range(500, 1000)))  # arrives while the server is down
        server = TiercelServer(home).start()
        wait_triggered(home, flow_id, 1000, 120, server)
        time.sleep(1.0)  # anything redelivered after the restart has had time to show up
        found = triggered(home, flow_id)
    finally:
        server.stop()
    numbers = sorted(v["value"]["n"] for v in found)
    assert numbers == list(range(1000)), f"{len(numbers)} executions, {len(set(numbers))} distinct (killed at {killed_at})"
    assert asyncio.run(_publish(amqp_url, queue, range(0))) == 0  # every message acknowledged


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def test_broker_refuses_then_drops_the_connection_and_the_trigger_resumes(amqp_url, tmp_path):
    if shutil.which("rabbitmqctl") is None or "127.0.0.1:5672" not in amqp_url:
        pytest.skip("needs the machine's RabbitMQ and rabbitmqctl (a virtual host of the test's own)")
    vhost, queue, flow_id = f"tiercel-e2e-{uuid.uuid4().hex[:8]}", "orders", "resumes"
    url = amqp_url.rstrip("/") + "/" + vhost
    home = tmp_path / "home"
    server = TiercelServer(home).start()
    try:
        server.deploy(_flow(flow_id, url, queue))  # the virtual host does not exist yet: refused
        deadline = time.monotonic() + 15
        while f"RabbitMQ at amqp://guest:***@127.0.0.1:5672/{vhost} is unreachable" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.1)
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        asyncio.run(_publish(url, queue, range(5), declare=True))
        assert len(wait_triggered(home, flow_id, 5, 30, server)) == 5  # resumed after the backoff
        _rabbitmqctl("close_all_connections", "-p", vhost, "tiercel test: the broker drops its clients")
        asyncio.run(_publish(url, queue, range(100, 105)))
        found = wait_triggered(home, flow_id, 10, 30, server)
        assert sorted(v["value"]["n"] for v in found) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
        log = server.log.read_text()
        assert "the broker closed the connection" in log  # the drop was seen, reported, and recovered from
        assert log.count(f"127.0.0.1:5672/{vhost} is unreachable") < 12  # backoff, not a loop
        assert server.alive()
    finally:
        server.stop()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)
