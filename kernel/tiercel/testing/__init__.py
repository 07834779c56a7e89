"""Test support for Tiercel and its plugins: the public surface plugin tests use.

- ``run_flow`` runs a flow to its end in-process; ``tiercel`` runs the CLI as a subprocess;
  ``TiercelServer`` starts a real server (``tiercel.testing.harness``).
- ``run_context`` gives a RunContext for calling a task directly; ``TriggerHarness`` polls,
  listens and delivers a trigger's events as the server does; ``read_file`` reads a stored
  file (``tiercel.testing.components``).
- ``tiercel.testing.services`` starts real brokers and databases on loopback;
  ``tiercel.testing.fixtures`` is the pytest plugin with their fixtures.

Names load lazily, so importing the pytest plugin stays cheap.
"""

from typing import Any

_EXPORTS = {
    "run_flow": "tiercel.testing.harness",
    "run_json": "tiercel.testing.harness",
    "task_run": "tiercel.testing.harness",
    "tiercel": "tiercel.testing.harness",
    "TiercelServer": "tiercel.testing.harness",
    "wait_triggered": "tiercel.testing.harness",
    "run_context": "tiercel.testing.components",
    "read_file": "tiercel.testing.components",
    "write_file": "tiercel.testing.components",
    "render_component": "tiercel.testing.components",
    "execution_logs": "tiercel.testing.components",
    "execution_metrics": "tiercel.testing.components",
    "put_secret": "tiercel.testing.components",
    "TriggerHarness": "tiercel.testing.components",
    "free_port": "tiercel.testing.services",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tiercel.testing' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
