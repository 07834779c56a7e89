"""Plugin discovery: entry points, provenance, duplicates, broken and incompatible plugins."""

import pytest

from tiercel.plugins import load_registry

HELLO = """
from pydantic import Field
from tiercel import Task, hookimpl

TIERCEL_API = ">=1.0,<2"

class Hello(Task):
    \"\"\"Say hello.\"\"\"
    type = "hello.Hello"
    aliases = ("hello.Hi",)
    name: str = Field("world", description="Who to greet.")

@hookimpl
def register_tasks(register):
    register(Hello)
"""


def test_hook_register_tasks(make_plugin):
    registry = load_registry(make_plugin("tiercel-hello", HELLO, version="2.3"))
    info = registry.get("task", "hello.Hello")
    assert (info.dist, info.version, info.kind) == ("tiercel-hello", "2.3", "task")
    assert registry.get("task", "hello.Hi") is info  # aliases resolve to the same component
    assert registry.types("task").count("hello.Hello") == 1 and "hello.Hi" not in registry.types("task")
    assert registry.plugins["tiercel-hello"].to_json()["components"]["task"] == ["hello.Hello"]


def test_hook_register_triggers(make_plugin):
    eps = make_plugin("tiercel-tr", """
        from tiercel import PollingTrigger, RealtimeTrigger, Trigger, hookimpl

        class Poll(PollingTrigger):
            \"\"\"Poll.\"\"\"
            type = "tr.Poll"

        class Live(RealtimeTrigger):
            \"\"\"Listen.\"\"\"
            type = "tr.Live"

        class Plain(Trigger):
            \"\"\"A trigger of no kind: nothing would drive it.\"\"\"
            type = "tr.Plain"

        @hookimpl
        def register_triggers(register):
            register(Poll)
            register(Live)
            register(Plain)
    """)
    registry = load_registry(eps)
    assert registry.types("trigger")[-2:] == ["tr.Live", "tr.Poll"]
    assert registry.plugins["tiercel-tr"].errors == [
        "trigger Plain must subclass a trigger kind: tiercel.PollingTrigger, RealtimeTrigger, ScheduleTrigger, "
        "ExecutionTrigger or WebhookTrigger"]


def test_hook_register_runners(make_plugin):
    eps = make_plugin("tiercel-rn", """
        from tiercel import Runner, hookimpl

        class Remote(Runner):
            \"\"\"Run elsewhere.\"\"\"
            type = "rn.Remote"

        @hookimpl
        def register_runners(register):
            register(Remote)
            register(object)
    """)
    registry = load_registry(eps)
    assert registry.get("runner", "rn.Remote").dist == "tiercel-rn"
    assert "not a subclass of tiercel.Runner" in registry.plugins["tiercel-rn"].errors[0]


def test_hook_register_storages(make_plugin):
    eps = make_plugin("tiercel-st", """
        from tiercel import Storage, hookimpl

        class Mem(Storage):
            \"\"\"In memory.\"\"\"
            type = "st.Mem"

        class Nameless(Storage):
            \"\"\"No type.\"\"\"

        @hookimpl
        def register_storages(register):
            register(Mem)
            register(Nameless)
    """)
    registry = load_registry(eps)
    assert registry.get("storage", "st.Mem") is not None
    assert registry.plugins["tiercel-st"].errors == [
        'Nameless has no `type` class attribute (e.g. type = "st.Nameless")']


def test_duplicate_type_names_both_distributions(make_plugin):
    eps = make_plugin("tiercel-hello", HELLO) + make_plugin("tiercel-other", HELLO, version="0.9")
    registry = load_registry(eps)
    assert registry.get("task", "hello.Hello").dist == "tiercel-hello"
    assert registry.plugins["tiercel-other"].errors == [
        "task type `hello.Hello` is claimed by both tiercel-hello 1.0 and tiercel-other 0.9; uninstall one of them"]


def test_plugin_that_fails_to_import(make_plugin):
    eps = make_plugin("tiercel-broken", "import not_a_module_anywhere\n") + make_plugin("tiercel-hello", HELLO)
    registry = load_registry(eps)
    error = registry.plugins["tiercel-broken"].errors[0]
    assert error.startswith("cannot import tiercel_broken_") and "ModuleNotFoundError" in error
    assert registry.get("task", "hello.Hello") is not None  # the others still load


def test_misspelled_hookimpl_fails_loudly(make_plugin):
    eps = make_plugin("tiercel-typo", """
        from tiercel import hookimpl

        @hookimpl
        def register_task(register):
            pass
    """)
    registry = load_registry(eps)
    error = registry.plugins["tiercel-typo"].errors[0]
    assert "register_task" in error and "did you mean `register_tasks`?" in error
    assert "known hooks: on_execution_created, on_execution_end, on_task_run_end" in error


def test_hook_that_raises(make_plugin):
    eps = make_plugin("tiercel-boom", """
        from tiercel import hookimpl

        @hookimpl
        def register_tasks(register):
            raise RuntimeError("no luck")
    """)
    registry = load_registry(eps)
    assert registry.plugins["tiercel-boom"].errors == ["register_tasks raised RuntimeError: no luck"]


@pytest.mark.parametrize("api, reason", [
    (">=2.0,<3", "built for kernel API >=2.0,<3, this kernel provides 1.0"),
    ("one", "invalid TIERCEL_API 'one' (expected a range such as '>=1.0,<2')"),
])
def test_incompatible_api_is_skipped(make_plugin, api, reason):
    registry = load_registry(make_plugin("tiercel-hello", HELLO.replace(">=1.0,<2", api)))
    plugin = registry.plugins["tiercel-hello"]
    assert plugin.skipped == reason and plugin.components == []
    assert registry.get("task", "hello.Hello") is None


def test_allowlist(make_plugin, monkeypatch):
    eps = make_plugin("tiercel-hello", HELLO) + make_plugin("tiercel-st", "raise SystemError('never imported')\n")
    monkeypatch.setenv("TIERCEL_PLUGINS", "hello")
    registry = load_registry(eps)
    assert registry.get("task", "hello.Hello") is not None
    assert registry.plugins["tiercel-st"].skipped == "not in TIERCEL_PLUGINS"
    assert registry.get("task", "core.Log") is not None  # the core plugin always loads
    monkeypatch.setenv("TIERCEL_PLUGINS", "")
    registry = load_registry(eps)
    assert registry.get("task", "hello.Hello") is None and registry.get("task", "core.Log") is not None


def test_suggest(make_plugin):
    registry = load_registry(make_plugin("tiercel-hello", HELLO))
    assert registry.suggest("task", "hello.Helo") == "hello.Hello"
    assert registry.suggest("task", "HELLO.HI") == "hello.Hello"  # canonical name, even via an alias
    assert registry.suggest("task", "zzz.Qqq") is None


def test_plugin_that_exits_at_import(make_plugin):
    registry = load_registry(make_plugin("tiercel-quits", "import sys\nsys.exit('bye')\n"))
    assert registry.plugins["tiercel-quits"].errors[0].endswith("SystemExit: bye")
