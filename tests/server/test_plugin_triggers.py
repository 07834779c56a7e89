"""The plugin trigger runtime in-process: polling and realtime triggers from an installed test plugin.

Delivery (execution durably created, then ack), dedupe on the event key, state kept across
polls, start on deploy and stop on delete/disable, and a failing trigger backing off alone.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import textwrap
from importlib.metadata import distributions

import pytest

PLUGIN = '''
import asyncio
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from tiercel import PollingTrigger, RealtimeTrigger, TriggerEvent
from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


class Files(PollingTrigger):
    """Start one execution per batch of new files in a folder."""

    type: ClassVar[str] = "testtrig.Files"
    folder: str = Field(description="Folder watched.")

    async def poll(self, ctx):
        seen = set(ctx.state.get("seen", []))
        new = sorted(p.name for p in Path(self.folder).glob("*.txt") if p.name not in seen)
        if not new:
            return None

        def commit():
            ctx.state["seen"] = sorted(seen | set(new))

        return TriggerEvent(variables={"files": new}, key=",".join(new), ack=commit)


class Datagrams(RealtimeTrigger):
    """One execution per UDP datagram received on a local port."""

    type: ClassVar[str] = "testtrig.Datagrams"
    port: int = Field(description="UDP port on 127.0.0.1.")

    async def listen(self, ctx):
        queue = asyncio.Queue()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                queue.put_nowait(data.decode())

        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            Proto, local_addr=("127.0.0.1", self.port))
        try:
            while True:
                text = await queue.get()
                acked = []
                yield TriggerEvent(variables={"value": text}, key=text.split(":")[0], ack=lambda: acked.append(1))
        finally:
            transport.close()


class Broken(PollingTrigger):
    """Always fails, counting its polls."""

    type: ClassVar[str] = "testtrig.Broken"
    calls: ClassVar[list] = []

    async def poll(self, ctx):
        Broken.calls.append(1)
        raise RuntimeError("source unreachable")


@hookimpl
def register_triggers(register):
    for cls in (Files, Datagrams, Broken):
        register(cls)
'''


@pytest.fixture
def registry(tmp_path, monkeypatch):
    from tiercel.plugins import load_registry

    root = tmp_path / "site"
    info = root / "tiercel_testtrig-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiercel-testtrig\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tiercel]\ntesttrig = tiercel_testtrig_mod\n")
    (root / "tiercel_testtrig_mod.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(root))
    eps = [ep for d in distributions(path=[str(root)]) for ep in d.entry_points if ep.group == "tiercel"]
    reg = load_registry(eps)
    assert not reg.plugins["tiercel-testtrig"].errors, reg.plugins["tiercel-testtrig"].errors
    return reg


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flow(flow_id: str, trigger: str) -> str:
    return f"""\
id: {flow_id}
namespace: demo.plugins
tasks:
  - {{id: log, type: core.Log, message: "{{{{ trigger }}}}"}}
triggers:
{textwrap.indent(trigger, "  ")}"""


async def until(predicate, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


def test_polling_and_realtime_triggers_deliver_once_and_follow_deploys(tmp_path, registry, caplog):
    from tiercel.engine.runtime import Runtime
    from tiercel.engine.triggers import TriggerRunner

    caplog.set_level(logging.ERROR, "tiercel.triggers")
    folder = tmp_path / "inbox"
    folder.mkdir()
    port = free_udp_port()
    rt = Runtime(tmp_path / "home", registry=registry)

    def count(flow_id: str) -> int:
        return rt.db.one("SELECT COUNT(*) FROM executions WHERE flow_id = ?", (flow_id,))[0]

    def deploy(source: str) -> None:
        from tiercel.flow import load_flow

        f = load_flow(source, registry=registry)
        rt.stores.flows.deploy(f.namespace, f.id, source)

    async def main() -> None:
        stop = asyncio.Event()
        runner = TriggerRunner(rt, sync_every=0.05)
        loops = [asyncio.create_task(rt.serve(stop, 0.05)), asyncio.create_task(runner.run(stop))]
        deploy(flow("files", f"- {{id: files, type: testtrig.Files, interval: PT0.05S, folder: '{folder}'}}\n"))
        deploy(flow("udp", f"- {{id: udp, type: testtrig.Datagrams, port: {port}}}\n"))
        deploy(flow("broken", "- {id: broken, type: testtrig.Broken, interval: PT0.01S}\n"))

        (folder / "a.txt").write_text("a")
        (folder / "b.txt").write_text("b")
        await until(lambda: count("files") == 1)
        (folder / "c.txt").write_text("c")
        await until(lambda: count("files") == 2)
        await asyncio.sleep(0.3)
        assert count("files") == 2  # committed state: old files never start another execution
        rows = rt.db.query("SELECT trigger FROM executions WHERE flow_id = 'files' ORDER BY created_at")
        assert ['"files":["a.txt","b.txt"]' in rows[0][0], '"files":["c.txt"]' in rows[1][0]] == [True, True]

        await until(lambda: ("demo.plugins", "udp", "udp") in runner.tasks)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            while count("udp") < 2:  # resent until the listener is up: the keys dedupe the repeats
                for text in ("k1:hello", "k2:world", "k1:again"):  # k1 again: a redelivery, deduped
                    sender.sendto(text.encode(), ("127.0.0.1", port))
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        assert count("udp") == 2

        # a failing trigger backs off (1 s, then 2 s…) and logs its error once, without stopping the others
        polls = len(registry.get("trigger", "testtrig.Broken").cls.calls)
        assert 1 <= polls <= 5  # at its 10 ms interval it would have polled hundreds of times
        health = runner.health[("demo.plugins", "broken", "broken")]
        assert health.last_error == "RuntimeError: source unreachable" and health.failures >= 1
        assert sum("source unreachable" in r.getMessage() for r in caplog.records) == 1

        # disabled: its task stops (the port is free again); enabled: it listens again
        rt.stores.triggers.set_disabled("demo.plugins", "udp", "udp", "testtrig.Datagrams", True)
        await until(lambda: ("demo.plugins", "udp", "udp") not in runner.tasks)
        await asyncio.sleep(0.1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", port))
        rt.stores.triggers.set_disabled("demo.plugins", "udp", "udp", "testtrig.Datagrams", False)
        await until(lambda: ("demo.plugins", "udp", "udp") in runner.tasks)

        # deleted: stopped
        rt.stores.flows.delete("demo.plugins", "files")
        await until(lambda: ("demo.plugins", "files", "files") not in runner.tasks)
        (folder / "d.txt").write_text("d")
        await asyncio.sleep(0.3)
        assert count("files") == 2
        stop.set()
        await asyncio.gather(*loops)

    try:
        asyncio.run(main())
    finally:
        rt.close()
