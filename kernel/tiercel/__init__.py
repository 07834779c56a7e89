"""Tiercel: declarative YAML orchestration with a plugin-centric microkernel.

The names exported here are the whole public API for plugin authors; plugins never
import kernel internals. Exports load lazily so that `tiercel --help` stays fast.
"""

__version__ = "0.1.0"

#: Version of the plugin API. Plugins declare the range they support as a
#: module-level ``TIERCEL_API = ">=1.0,<2"`` in their entry-point module.
API_VERSION = "1.0"

_EXPORTS = {
    "hookimpl": "tiercel.hookspecs",
    "Component": "tiercel.api",
    "Task": "tiercel.api",
    "FlowableTask": "tiercel.api",
    "Trigger": "tiercel.api",
    "PollingTrigger": "tiercel.api",
    "RealtimeTrigger": "tiercel.api",
    "ScheduleTrigger": "tiercel.api",
    "ExecutionTrigger": "tiercel.api",
    "WebhookTrigger": "tiercel.api",
    "FlowableRun": "tiercel.api",
    "ChildRun": "tiercel.api",
    "SubflowRequest": "tiercel.api",
    "SubflowResult": "tiercel.api",
    "TriggerEvent": "tiercel.api",
    "Runner": "tiercel.api",
    "ScriptJob": "tiercel.api",
    "ScriptResult": "tiercel.api",
    "Storage": "tiercel.api",
    "StorageError": "tiercel.api",
    "SecretProvider": "tiercel.api",
    "RunContext": "tiercel.api",
    "TaskError": "tiercel.api",
    "Retry": "tiercel.api",
    "Example": "tiercel.api",
    "truthy": "tiercel.expr.paths",
}

__all__ = ["API_VERSION", "__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tiercel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
