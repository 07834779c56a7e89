"""The notification hooks that feed metrics and traces, seen by a third-party plugin (keyword calls)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from importlib.metadata import distributions

import pytest

PLUGIN = '''
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from tiercel import PollingTrigger, TriggerEvent, hookimpl

TIERCEL_API = ">=1.0,<2"
SEEN = []


class Files(PollingTrigger):
    """One execution per batch of new files."""

    type: ClassVar[str] = "obstrig.Files"
    folder: str = Field(description="Folder watched.")

    async def poll(self, ctx):
        seen = set(ctx.state.get("seen", []))
        new = sorted(p.name for p in Path(self.folder).glob("*.txt") if p.name not in seen)
        if not new:
            return None

        def commit():
            ctx.state["seen"] = sorted(seen | set(new))

        return TriggerEvent(variables={"files": new, "count": len(new)}, key=",".join(new), ack=commit)


class Broken(PollingTrigger):
    """Always fails."""

    type: ClassVar[str] = "obstrig.Broken"

    async def poll(self, ctx):
        raise RuntimeError("source unreachable")


@hookimpl
def register_triggers(register):
    register(Files)
    register(Broken)


@hookimpl
def on_execution_created(execution_id, flow_id, state, trigger):
    SEEN.append(("created", flow_id, state, (trigger or {}).get("id"), execution_id))


@hookimpl
def on_task_run_end(task_id, task_type, state, attempts, parent_task_run_id):
    SEEN.append(("task", task_id, task_type, state, [a["state"] for a in attempts], parent_task_run_id is None))


@hookimpl
def on_trigger_event(flow_id, trigger_id, trigger_type, count, execution_id):
    SEEN.append(("event", flow_id, trigger_id, trigger_type, count, execution_id is not None))


@hookimpl
def on_trigger_error(flow_id, trigger_id, error, failures, retry_in):
    SEEN.append(("error", flow_id, trigger_id, error, failures, retry_in > 0))
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    from tiercel.plugins import load_registry

    root = tmp_path / "site"
    info = root / "tiercel_obstrig-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiercel-obstrig\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tiercel]\nobstrig = tiercel_obstrig_mod\n")
    (root / "tiercel_obstrig_mod.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(root))
    eps = [ep for d in distributions(path=[str(root)]) for ep in d.entry_points if ep.group == "tiercel"]
    registry = load_registry(eps)
    assert not registry.plugins["tiercel-obstrig"].errors
    yield registry, sys.modules.get("tiercel_obstrig_mod") or __import__("tiercel_obstrig_mod")
    sys.modules.pop("tiercel_obstrig_mod", None)


def test_hook_on_execution_created(plugin, tmp_path):
    from tiercel.testing import run_flow

    registry, module = plugin
    result = run_flow("id: made\nnamespace: test.hooks\ntasks:\n  - {id: a, type: core.Log, message: hi}\n",
                      home=tmp_path / "home", registry=registry)
    assert ("created", "made", "CREATED", None, result["id"]) in module.SEEN


def test_hook_on_task_run_end(plugin, tmp_path):
    from tiercel.testing import run_flow

    registry, module = plugin
    run_flow("""
id: ends
namespace: test.hooks
tasks:
  - id: group
    type: core.Sequential
    tasks:
      - {id: inner, type: core.Log, message: hi}
  - id: flaky
    type: core.Fail
    allowFailure: true
    retry: {type: constant, interval: PT0.01S, maxAttempt: 2}
""", home=tmp_path / "home", registry=registry)
    tasks = [s for s in module.SEEN if s[0] == "task"]
    assert ("task", "inner", "core.Log", "SUCCESS", ["SUCCESS"], False) in tasks
    assert [s[1] for s in tasks].index("inner") < [s[1] for s in tasks].index("group")  # a child ends first
    group = next(s for s in tasks if s[1] == "group")
    assert group[2] == "core.Sequential" and group[3] == "SUCCESS" and group[5] is True
    flaky = next(s for s in tasks if s[1] == "flaky")
    assert flaky[2:4] == ("core.Fail", "WARNING") and len(flaky[4]) == 2
    assert sum(1 for s in tasks if s[1] == "flaky") == 1  # once, when it ends


def _run_triggers(registry, tmp_path, flows: list[str], until) -> None:
    from tiercel.engine.runtime import Runtime
    from tiercel.engine.triggers import TriggerRunner
    from tiercel.flow import load_flow

    rt = Runtime(tmp_path / "home", registry=registry)

    async def main() -> None:
        stop = asyncio.Event()
        runner = TriggerRunner(rt, sync_every=0.05)
        loops = [asyncio.create_task(rt.serve(stop, 0.05)), asyncio.create_task(runner.run(stop))]
        for source in flows:
            f = load_flow(source, registry=registry)
            rt.stores.flows.deploy(f.namespace, f.id, source)
        deadline = asyncio.get_running_loop().time() + 15
        while not until():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.05)
        stop.set()
        rt.wake()
        await asyncio.gather(*loops)

    try:
        asyncio.run(main())
    finally:
        rt.close()


FLOW = "id: {id}\nnamespace: test.hooks\ntasks:\n  - {{id: log, type: core.Log, message: hi}}\ntriggers:\n  - {trigger}\n"


def test_hook_on_trigger_event(plugin, tmp_path):
    from tiercel.observability import metrics

    registry, module = plugin
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "b.txt").write_text("b")
    key = ("test.hooks", "files", "files", "obstrig.Files")
    before = metrics.TRIGGER_MESSAGES.values.get(key, 0)
    trigger = f"{{id: files, type: obstrig.Files, interval: PT0.05S, folder: '{folder}'}}"
    _run_triggers(registry, tmp_path, [FLOW.format(id="files", trigger=trigger)],
                  lambda: any(s[0] == "event" for s in module.SEEN))
    assert ("event", "files", "files", "obstrig.Files", 2, True) in module.SEEN
    assert metrics.TRIGGER_MESSAGES.values[key] - before == 2  # two messages in one event


def test_hook_on_trigger_error(plugin, tmp_path):
    from tiercel.observability import metrics

    registry, module = plugin
    key = ("test.hooks", "broken", "broken", "obstrig.Broken")
    before = metrics.TRIGGER_ERRORS.values.get(key, 0)
    _run_triggers(registry, tmp_path, [FLOW.format(id="broken", trigger="{id: broken, type: obstrig.Broken, interval: PT0.01S}")],
                  lambda: any(s[0] == "error" for s in module.SEEN))
    assert ("error", "broken", "broken", "RuntimeError: source unreachable", 1, True) in module.SEEN
    assert metrics.TRIGGER_ERRORS.values[key] - before >= 1
