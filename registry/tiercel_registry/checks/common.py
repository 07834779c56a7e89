"""Checks every component passes (schema, documentation, examples, unknown properties, expressions),
and the helpers that read a component's example flows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from tiercel_registry._engine import kind_of, registry_for
from tiercel_registry.checks import UNKNOWN, CheckFailed, CheckSkipped, Options, fail


def _names(cls: type) -> set[str]:
    return {cls.type, *cls.aliases}


def _occurrences(node: Any, names: set[str]) -> Iterator[dict[str, Any]]:
    """Every mapping whose ``type`` is one of *names*, anywhere in a parsed flow."""
    if isinstance(node, dict):
        if node.get("type") in names:
            yield node
        for value in node.values():
            yield from _occurrences(value, names)
    elif isinstance(node, list):
        for value in node:
            yield from _occurrences(value, names)


def _missing_plugins(exc: Exception) -> list[str]:
    """Distributions an example needs but are not installed (``unknown task type `scripts.Shell```)."""
    from tiercel.plugins import get_registry

    errors = getattr(exc, "errors", [])
    needed = []
    for error in errors:
        message = getattr(error, "message", "")
        if " type `" not in message or "unknown" not in message:
            return []
        type_name = message.split("`")[1]
        dist = f"tiercel-{type_name.split('.')[0]}"
        if dist in get_registry().plugins:
            return []
        needed.append(dist)
    return sorted(set(needed))


@dataclass
class _Example:
    index: int
    title: str
    text: str
    runs: bool
    data: Any


def _examples(cls: type, registry: Any = None) -> tuple[list[_Example], list[str], list[str]]:
    """(valid examples, problems, skipped reasons) of *cls*."""
    from tiercel.flow import FlowValidationError, load_flow

    registry = registry or registry_for(cls)
    valid, problems, skipped = [], [], []
    for i, example in enumerate(cls.examples, 1):
        name = f"example {i} ({example.title})"
        try:
            load_flow(example.flow, f"{cls.type} {name}", registry=registry)
        except FlowValidationError as exc:
            missing = _missing_plugins(exc)
            if missing:
                skipped.append(f"{name} needs {', '.join(missing)} (not installed)")
            else:
                problems.append(f"{name} does not validate:\n{exc}")
            continue
        valid.append(_Example(i, example.title, example.flow, example.run, yaml.safe_load(example.flow)))
    return valid, problems, skipped


def _using(cls: type, examples: list[_Example]) -> list[tuple[_Example, dict[str, Any]]]:
    return [(ex, node) for ex in examples for node in _occurrences(ex.data, _names(cls))]


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)



def check_schema(cls: type, options: Options) -> None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        schema = cls.model_json_schema(mode="validation")
        json.dumps(schema)
    except Exception as exc:
        raise CheckFailed(f"{cls.type}: its JSON Schema cannot be generated ({type(exc).__name__}: {exc}); "
                          f"give every field a type pydantic can describe") from None
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise CheckFailed(f"{cls.type}: its JSON Schema is invalid: {exc.message} (at {'/'.join(map(str, exc.path))})") from None


def _undocumented(schema: dict[str, Any]) -> Iterator[str]:
    for name, prop in sorted(schema.get("properties", {}).items()):
        if not (isinstance(prop, dict) and str(prop.get("description", "")).strip()):
            yield name
    for def_name, sub in sorted(schema.get("$defs", {}).items()):
        for name in _undocumented({"properties": sub.get("properties", {})}):
            yield f"{def_name}.{name}"


def check_documented(cls: type, options: Options) -> None:
    problems = []
    if not (cls.__dict__.get("__doc__") or "").strip():
        problems.append(f"{cls.type}: the class {cls.__name__} has no docstring; its first line is the component's "
                        f"summary in `tiercel plugins list` and the reference")
    try:
        schema = cls.model_json_schema(mode="validation")
    except Exception:
        schema = {}
    for name in _undocumented(schema):
        problems.append(f"{cls.type}: property `{name}` has no description; add Field(description=\"...\")")
    fail(problems)


def check_examples_validate(cls: type, options: Options) -> None:
    if not cls.examples:
        raise CheckFailed(f"{cls.type} has no examples: add `examples = [Example(\"title\", FLOW_YAML)]` to the class, "
                          f"a complete flow using it (`tiercel plugins info` and the reference show it; the registry runs it)")
    valid, problems, skipped = _examples(cls)
    if kind_of(cls) in ("task", "trigger"):
        for ex in valid:
            if not list(_occurrences(ex.data, _names(cls))):
                problems.append(f"example {ex.index} ({ex.title}) does not use {cls.type}")
    fail(problems)
    if not valid:
        raise CheckSkipped("; ".join(skipped))


def check_unknown_property(cls: type, options: Options) -> None:
    from pydantic import ValidationError

    from tiercel.flow import FlowValidationError, load_flow

    hint = ("keep `extra=\"forbid\"` (the tiercel.Component default), so that a misspelled property is an "
            "error rather than silently ignored")
    using = _using(cls, _examples(cls)[0]) if kind_of(cls) in ("task", "trigger") else []
    if using:
        ex, node = using[0]
        node[UNKNOWN] = 1
        try:
            load_flow(_dump(ex.data), registry=registry_for(cls))
        except FlowValidationError as exc:
            message = str(exc)
        else:
            raise CheckFailed(f"{cls.type}: a flow setting the unknown property `{UNKNOWN}` validated; {hint}")
        finally:
            del node[UNKNOWN]
    else:
        try:
            cls.model_validate({**options.properties, UNKNOWN: 1})
        except ValidationError as exc:
            message = str(exc)
        else:
            raise CheckFailed(f"{cls.type}: the unknown property `{UNKNOWN}` was accepted; {hint}")
    if UNKNOWN not in message:
        raise CheckFailed(f"{cls.type}: the unknown property `{UNKNOWN}` was rejected, but the message does not name it:\n"
                          f"{message}")


def _static(cls: type, key: str) -> bool:
    if key in ("id", "type") or key in cls.static_fields:
        return True
    for name, info in cls.model_fields.items():
        aliases = {info.alias} | set(getattr(info.validation_alias, "choices", None) or [info.validation_alias])
        if key in aliases:
            return name in cls.static_fields
    return False


def check_expressions(cls: type, options: Options) -> None:
    """Each literal property of each example, replaced by an expression, renders back to the same value."""
    from tiercel.api import contains_expression
    from tiercel.flow import FlowValidationError, load_flow
    from tiercel.testing import render_component

    registry = registry_for(cls)
    problems: list[str] = []
    probed = 0
    for ex, node in _using(cls, _examples(cls, registry)[0]):
        if "id" not in node:
            continue
        keep = dict(node)
        # Properties that are expressions already need the run's variables: leave them out.
        for k, v in keep.items():
            if not _static(cls, k) and contains_expression(v):
                del node[k]
        keys = [k for k in node if not _static(cls, k)]
        try:
            original = _instance(load_flow(_dump(ex.data), registry=registry), node["id"]) if keys else None
        except FlowValidationError:
            original = None  # a required property was an expression: nothing literal to compare with
        if original is None:
            node.clear()
            node.update(keep)
            continue
        literal = {k: node[k] for k in keys}
        for k in keys:
            node[k] = "{{ probe[" + json.dumps(k) + "] }}"
        try:
            try:
                probe_flow = load_flow(_dump(ex.data), registry=registry)
            except FlowValidationError as exc:
                problems.append(f"example {ex.index}: `{node['id']}` refuses expressions at deploy time:\n{exc}\n"
                                f"a property must accept `{{{{ … }}}}` where a typed value is expected")
                continue
            try:
                rendered = render_component(_instance(probe_flow, node["id"]), {"probe": literal}, registry)
            except Exception as exc:
                problems.append(f"example {ex.index}: rendering `{node['id']}` failed: {exc}")
                continue
            probed += 1
            want, got = original.model_dump(), rendered.model_dump()
            for name in sorted(want):
                if want[name] != got.get(name):
                    problems.append(f"example {ex.index}: property `{name}` of `{node['id']}` given as an expression "
                                    f"rendered to {got.get(name)!r}, expected {want[name]!r}")
        finally:
            node.clear()
            node.update(keep)
    fail(problems)
    if not probed:
        raise CheckSkipped("no example sets a literal (non-static) property to probe")


def _instance(flow: Any, component_id: str) -> Any:
    for trigger in flow.triggers or []:
        if trigger.id == component_id:
            return trigger
    return flow.task(component_id)
