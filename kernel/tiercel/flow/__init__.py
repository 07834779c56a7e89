"""Flows: the model, YAML loading with source positions, validation and the JSON Schema.

``load_flow(text, path=None, registry=None)`` and ``load_flow_file(path)`` return a
:class:`Flow` or raise :class:`FlowValidationError` listing every :class:`FlowError`.
"""

_EXPORTS = {
    "Flow": "tiercel.flow.model",
    "iter_children": "tiercel.flow.model",
    "child_fields": "tiercel.flow.model",
    "FlowError": "tiercel.flow.errors",
    "FlowValidationError": "tiercel.flow.errors",
    "load_flow": "tiercel.flow.loader",
    "load_flow_file": "tiercel.flow.loader",
    "check_flow": "tiercel.flow.loader",
    "validate_paths": "tiercel.flow.loader",
    "check_paths": "tiercel.flow.loader",
    "collect_files": "tiercel.flow.loader",
    "resolve_inputs": "tiercel.flow.inputs",
    "InputError": "tiercel.flow.inputs",
    "flow_json_schema": "tiercel.flow.schema",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tiercel.flow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
