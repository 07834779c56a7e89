"""The hooks beyond component registration, each as a plugin author uses it, through pluggy.

Commands, functions, filters, storage resolution and execution-end notifications come from
fake plugin distributions; the CLI runs as a subprocess, flows run in-process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tiercel.plugins import load_registry
from tiercel.testing import run_flow

COMMAND_PLUGIN = """
    import click
    from tiercel import hookimpl

    TIERCEL_API = ">=1.0,<2"

    @click.command()
    @click.argument("who")
    def greet(who):
        \"\"\"Say hello to WHO from a plugin.\"\"\"
        click.echo(f"hello {who}")

    @hookimpl
    def register_commands(register):
        register(greet)
"""


def _site(root: Path, dist: str, body: str) -> Path:
    """A plugin distribution installed on *root* (a dist-info and a module), for subprocesses."""
    module = dist.replace("-", "_")
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{module}-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[tiercel]\n{dist.removeprefix('tiercel-')} = {module}\n")
    return root


def _cli(root: Path, cache: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "TIERCEL_CACHE_DIR": str(cache), **(env or {})}
    return subprocess.run([sys.executable, "-m", "tiercel.cli.main", *args], capture_output=True, text=True,
                          env=full, timeout=60)


def test_hook_register_commands(tmp_path):
    site = _site(tmp_path / "site", "tiercel-greeter", COMMAND_PLUGIN)
    listed = _cli(site, tmp_path / "cache", "--help")
    assert listed.returncode == 0, listed.stderr
    assert "Commands from plugins" in listed.stdout and "greet" in listed.stdout
    assert "Say hello to WHO from a plugin. (tiercel-greeter)" in listed.stdout
    ran = _cli(site, tmp_path / "cache", "greet", "Ada")  # a second process: from the manifest
    assert (ran.returncode, ran.stdout) == (0, "hello Ada\n"), ran.stderr


def test_a_plugin_cannot_take_a_kernel_command(make_plugin):
    registry = load_registry(make_plugin("tiercel-taker", COMMAND_PLUGIN.replace("def greet", "def run")
                                         .replace("register(greet)", "register(run)")))
    assert registry.plugins["tiercel-taker"].errors == ["command `tiercel run` is the kernel's own; pick another name"]
    assert "run" not in registry.extensions("command")


def test_hook_register_expression_functions(make_plugin):
    eps = make_plugin("tiercel-fx", """
        from tiercel import hookimpl

        def shout(text, times=1):
            \"\"\"Upper-case text, repeated.\"\"\"
            return text.upper() * times

        @hookimpl
        def register_expression_functions(register):
            register("shout", shout)
            register("not an identifier", shout)
    """)
    registry = load_registry(eps)
    assert registry.extensions("function")["shout"].dist == "tiercel-fx"
    assert "identifier" in registry.plugins["tiercel-fx"].errors[0]
    from tiercel.plugins import set_registry

    set_registry(registry)
    try:
        ex = run_flow("""
id: fx
namespace: test.hooks
tasks:
  - id: say
    type: core.Return
    format: "{{ shout('hi', times=2) }}"
""")
    finally:
        set_registry(None)
    assert ex["state"] == "SUCCESS" and ex["taskRuns"][0]["outputs"]["value"] == "HIHI"


def test_hook_register_filters(make_plugin):
    eps = make_plugin("tiercel-flt", """
        from tiercel import hookimpl

        def reverse_words(value, sep=" "):
            return sep.join(reversed(str(value).split(sep)))

        def evil_upper(value):
            return "taken over"

        @hookimpl
        def register_filters(register):
            register("reverse_words", reverse_words)
            register("upper", evil_upper)  # a built-in name: the built-in stays
    """)
    from tiercel.plugins import set_registry

    set_registry(load_registry(eps))
    try:
        ex = run_flow("""
id: flt
namespace: test.hooks
tasks:
  - id: say
    type: core.Return
    format: "{{ 'a b c' | reverse_words }} {{ 'x' | upper }}"
""")
    finally:
        set_registry(None)
    assert ex["taskRuns"][0]["outputs"]["value"] == "c b a X"


def test_hook_resolve_storage(make_plugin, tmp_path, monkeypatch):
    eps = make_plugin("tiercel-memstore", """
        import io
        from tiercel import Storage, hookimpl

        FILES = {}
        CALLS = []

        class Memory(Storage):
            \"\"\"Files in a dict (for tests).\"\"\"
            type = "memstore.Memory"

            def put(self, path, data):
                FILES[path] = data.read()
                return len(FILES[path])

            def open(self, path):
                if path not in FILES:
                    raise FileNotFoundError(path)
                return io.BytesIO(FILES[path])

            def exists(self, path):
                return path in FILES

            def size(self, path):
                return len(FILES[path])

            def list(self, prefix):
                return sorted(p for p in FILES if p.startswith(prefix))

            def delete(self, path):
                return FILES.pop(path, None) is not None

        @hookimpl
        def register_storages(register):
            register(Memory)

        @hookimpl
        def resolve_storage(uri, options):  # takes fewer arguments than the spec: pluggy matches by name
            CALLS.append((uri, options))
            return Memory() if uri.startswith("mem://") else None
    """)
    registry = load_registry(eps)
    assert registry.plugins["tiercel-memstore"].hooks == ["resolve_storage"]
    from tiercel.plugins import set_registry

    monkeypatch.setenv("TIERCEL_STORAGE", "mem://bucket?zone=test")
    set_registry(registry)
    try:
        ex = run_flow("""
id: big
namespace: test.hooks
tasks:
  - id: big
    type: core.Return
    format: "{{ range(100000) | join(',') }}"
""", home=tmp_path / "home")
    finally:
        set_registry(None)
    module = sys.modules[registry.plugins["tiercel-memstore"].module]
    assert module.CALLS == [("mem://bucket?zone=test", {"zone": "test"})]
    assert ex["state"] == "SUCCESS" and len(ex["taskRuns"][0]["outputs"]["value"]) > 256 * 1024
    # the large output went to the plugin's storage, not the local directory
    assert any(p.endswith("outputs-1.json") for p in module.FILES)
    assert not (tmp_path / "home" / "storage").exists()


def test_unknown_storage_is_a_clear_start_up_error(tmp_path, monkeypatch):
    from tiercel.api import StorageError

    monkeypatch.setenv("TIERCEL_STORAGE", "gcs://bucket/prefix")
    with pytest.raises(StorageError, match=r"no installed plugin provides the internal storage `gcs://bucket/prefix`"):
        run_flow("id: x\nnamespace: test.hooks\ntasks:\n  - {id: a, type: core.Log, message: hi}\n", home=tmp_path)


def test_hook_on_execution_end(make_plugin, tmp_path, monkeypatch):
    eps = make_plugin("tiercel-listener", """
        from tiercel import hookimpl

        ENDED = []

        @hookimpl
        def on_execution_end(execution):
            ENDED.append((execution["flowId"], execution["state"], [t["taskId"] for t in execution["taskRuns"]],
                          execution["inputs"]))
    """)
    registry = load_registry(eps)
    from tiercel.plugins import set_registry

    monkeypatch.setenv("TIERCEL_SECRET_TOKEN", "s3cr3t-value")
    set_registry(registry)
    try:
        run_flow("""
id: ends
namespace: test.hooks
inputs:
  - {id: note, type: STRING}
tasks:
  - id: one
    type: core.Log
    message: "{{ secret('TOKEN') }}"
  - id: two
    type: core.Fail
""", inputs={"note": "shown"})
    finally:
        set_registry(None)
    module = sys.modules[registry.plugins["tiercel-listener"].module]
    assert module.ENDED == [("ends", "FAILED", ["one", "two"], {"note": "shown"})]


def test_tracing_prints_each_hook_call(tmp_path):
    site = _site(tmp_path / "site", "tiercel-greeter", COMMAND_PLUGIN)
    traced = _cli(site, tmp_path / "cache", "plugins", "list", env={"TIERCEL_TRACE_PLUGINS": "1"})
    assert traced.returncode == 0, traced.stderr
    assert "tiercel plugins: register_commands(register=" in traced.stderr
    assert "-> [tiercel-greeter]" in traced.stderr and "register_commands returned []" in traced.stderr


def test_contribution_hooks_run_through_pluggy_ordering(make_plugin):
    eps = make_plugin("tiercel-late", """
        from tiercel import Task, hookimpl

        class A(Task):
            \"\"\"First.\"\"\"
            type = "order.Same"

        @hookimpl(trylast=True)
        def register_tasks(register):
            register(A)
    """) + make_plugin("tiercel-early", """
        from tiercel import Task, hookimpl

        class B(Task):
            \"\"\"Second.\"\"\"
            type = "order.Same"

        @hookimpl(tryfirst=True)
        def register_tasks(register):
            register(B)
    """)
    registry = load_registry(eps)
    assert registry.get("task", "order.Same").dist == "tiercel-early"  # tryfirst claims the type first
    assert "claimed by both tiercel-early 1.0 and tiercel-late 1.0" in registry.plugins["tiercel-late"].errors[0]


def test_hook_register_secret_providers(make_plugin, monkeypatch):
    eps = make_plugin("tiercel-memsecrets", """
        from tiercel import Example, SecretProvider, hookimpl

        class Memory(SecretProvider):
            \"\"\"Secrets from a mapping given in the configuration (for tests).\"\"\"
            type = "mem.Secrets"
            aliases = ("mem",)
            values: dict[str, str] = {}

            def get(self, name, namespace):
                return self.values.get(name)

        @hookimpl
        def register_secret_providers(register):
            register(Memory)
            register(object)
    """)
    registry = load_registry(eps)
    assert registry.get("secret", "mem").dist == "tiercel-memsecrets"
    assert "register_secret_providers got <class 'object'>" in registry.plugins["tiercel-memsecrets"].errors[0]
    monkeypatch.setenv("TIERCEL_SECRET_PROVIDERS", '[env, {type: mem, values: {TOKEN: "from-a-plugin-123"}}]')
    logs: list = []
    ex = run_flow("""
id: sec
namespace: test.hooks
tasks:
  - id: say
    type: core.Log
    message: "token {{ secret('TOKEN') }}"
""", registry=registry, logs=logs)
    assert ex["state"] == "SUCCESS"
    assert ("say", "INFO", "token ******") in logs
