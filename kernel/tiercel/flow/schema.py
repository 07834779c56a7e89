"""The JSON Schema of a flow, built from the installed components' pydantic models.

Draft-07, the dialect yaml-language-server (VS Code's YAML extension) handles best.
Tasks and triggers dispatch on ``type``: an ``enum`` of every type and alias for completion,
then one ``if``/``then`` per type so an error lands on that type's own properties. Any
property of a component may also hold an expression (``{{ … }}``), as at deploy time.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from tiercel.api import FlowableTask, PollingTrigger, RealtimeTrigger, Task, Trigger
from tiercel.flow.model import Flow, child_fields

DRAFT = "http://json-schema.org/draft-07/schema#"
EXPRESSION = {
    "type": "string",
    "pattern": r"\{\{[\s\S]*\}\}|\{%[\s\S]*%\}",
    "description": "An expression, rendered when the task runs: `{{ inputs.name }}`.",
}
_BASES = {Task: "task", FlowableTask: "task", Trigger: "trigger", PollingTrigger: "trigger", RealtimeTrigger: "trigger"}


class _Generator(GenerateJsonSchema):
    """Skips what has no JSON Schema (a callable field) instead of failing the whole document."""

    def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> dict[str, Any]:
        return {}


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in renames:
            node = {**node, "$ref": renames[ref]}
        return {k: _rewrite_refs(v, renames) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def _accepts_any_string(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "string" and not ({"enum", "const", "pattern", "format"} & set(schema)):
        return True
    return any(_accepts_any_string(s) for s in schema.get("anyOf", []) if isinstance(s, dict))


def _with_expression(schema: dict[str, Any]) -> dict[str, Any]:
    """*schema*, also accepting an expression string; documentation stays on the outside."""
    if _accepts_any_string(schema) or not schema:
        return schema
    outer = {k: schema[k] for k in ("description", "default", "deprecated", "examples") if k in schema}
    inner = {k: v for k, v in schema.items() if k not in outer and k != "title"}
    choices = inner["anyOf"] if set(inner) == {"anyOf"} else [inner]
    return {**outer, "anyOf": [*choices, {"$ref": "#/definitions/expression"}]}


def _strip_titles(node: Any, in_property: bool = False) -> Any:
    """Drop pydantic's generated property titles ("Maxattempt"): noise in editor hovers."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "title" and in_property:
                continue
            if k == "properties" and isinstance(v, dict):
                out[k] = {name: _strip_titles(prop, True) for name, prop in v.items()}
            else:
                out[k] = _strip_titles(v, in_property)
        return out
    if isinstance(node, list):
        return [_strip_titles(v, in_property) for v in node]
    return node


def _literal_properties(cls: type) -> set[str]:
    """YAML names of the properties never rendered: static fields, ids and child tasks."""
    static = set(cls.static_fields) | {"id"} | {f.name for f in child_fields(cls)}
    names = set()
    for name, field in cls.model_fields.items():
        if name in static:
            names.add(field.alias or name)
            names.add(name)
    return names


def _dispatch(kind: str, infos: list[Any], defs: dict[str, Any]) -> dict[str, Any]:
    names = [n for info in infos for n in (info.type, *info.aliases)]
    branches = []
    for info in infos:
        allowed = [info.type, *info.aliases]
        branches.append({
            "if": {"properties": {"type": {"enum": allowed}}, "required": ["type"]},
            "then": {"$ref": f"#/definitions/{info.type}"},
        })
    return {
        "type": "object",
        "description": f"A {kind}: its `type` decides which other properties it takes.",
        "properties": {
            "id": {"type": "string", "description": f"Identifier of the {kind}, unique in the flow."},
            "type": {"type": "string", "enum": names, "description": f"The {kind} type (`tiercel plugins list`)."},
        },
        "required": ["id", "type"],
        "allOf": branches,
    }


def flow_json_schema(registry: Any = None) -> dict[str, Any]:
    """The JSON Schema (draft-07) of a flow with every task and trigger type of *registry*."""
    if registry is None:
        from tiercel.plugins import get_registry

        registry = get_registry()
    components = {kind: registry.components(kind) for kind in ("task", "trigger")}
    classes = [info.cls for infos in components.values() for info in infos]
    models = [(m, "validation") for m in (Flow, *_BASES, *classes)]
    key_map, top = models_json_schema(models, ref_template="#/definitions/{model}", schema_generator=_Generator)
    defs: dict[str, Any] = top.get("$defs", {})

    def ref_of(cls: type) -> str:
        return key_map[(cls, "validation")]["$ref"]

    renames = {ref_of(base): f"#/definitions/{kind}" for base, kind in _BASES.items()}
    for infos in components.values():
        for info in infos:
            renames[ref_of(info.cls)] = f"#/definitions/{info.type}"
    flow_ref = ref_of(Flow)
    prefix = "#/definitions/"
    originals = {ref: defs[ref[len(prefix):]] for ref in renames if ref[len(prefix):] in defs}
    flow_def = defs.pop(flow_ref[len(prefix):])
    for ref in renames:
        defs.pop(ref[len(prefix):], None)
    for infos in components.values():
        for info in infos:
            body = dict(originals[ref_of(info.cls)])
            body["title"] = info.type
            if info.cls.examples:  # shown on hover by yaml-language-server
                example = info.cls.examples[0]
                body["markdownDescription"] = (f"{body.get('description', '')}\n\n**{example.title}**\n\n"
                                               f"```yaml\n{example.flow.rstrip()}\n```")
            literal = _literal_properties(info.cls)
            props = {name: prop if name in literal else _with_expression(prop)
                     for name, prop in body.get("properties", {}).items()}
            allowed = [info.type, *info.aliases]
            props = {"type": {"enum": allowed, "description": "The type of this component."}, **props}
            body["properties"] = props
            body["required"] = ["type", *body.get("required", [])]
            defs[info.type] = body
    for kind, infos in components.items():
        defs[kind] = _dispatch(kind, infos, defs)
    defs["expression"] = EXPRESSION
    flow_def = dict(flow_def)
    props = dict(flow_def["properties"])
    label_value = {"type": ["string", "number", "boolean"]}
    props["labels"] = {
        "description": props["labels"].get("description"),
        "anyOf": [
            {"type": "object", "additionalProperties": label_value},
            {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}, "value": label_value},
                                        "required": ["key", "value"], "additionalProperties": False}},
        ],
    }
    props["taskDefaults"] = {**props["pluginDefaults"], "deprecated": True,
                             "description": "Deprecated name of `pluginDefaults`."}
    flow_def["properties"] = props
    schema = {
        "$schema": DRAFT,
        "title": "Tiercel flow",
        **{k: v for k, v in flow_def.items() if k != "title"},
        "definitions": defs,
    }
    return _strip_titles(_rewrite_refs(schema, renames))
