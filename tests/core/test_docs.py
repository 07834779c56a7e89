"""docs/user/core-tasks.md stays true: every core type and property is documented, every flow validates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tiercel.api import Task, Trigger
from tiercel.flow import load_flow
from tiercel.plugins import load_registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "user" / "core-tasks.md"
TEXT = DOC.read_text()
REGISTRY = load_registry(eps=[])
COMMON = set(Task.model_fields) | set(Trigger.model_fields)


def section(type_name: str) -> str:
    match = re.search(rf"^### {re.escape(type_name)}\n(.*?)(?=^##)", TEXT + "\n##", re.S | re.M)
    assert match, f"docs/user/core-tasks.md has no `### {type_name}` section"
    return match.group(1)


@pytest.mark.parametrize("info", REGISTRY.components(), ids=lambda i: i.type)
def test_every_type_and_property_is_documented(info):
    body = section(info.type)
    for name, field in info.cls.model_fields.items():
        if name in COMMON and name not in ("inputs", "conditions"):
            continue
        assert f"| `{field.alias or name}` |" in body, f"{info.type}: property `{field.alias or name}` missing from its table"
    for alias in info.cls.aliases:
        assert f"`{alias}`" in body


FLOWS = re.findall(r"```yaml\n(.*?)```", TEXT, re.S)


@pytest.mark.parametrize("flow", FLOWS, ids=[re.search(r"^id: (\S+)", f, re.M).group(1) for f in FLOWS])
def test_every_flow_in_the_doc_is_valid(flow):
    registry = REGISTRY
    if "scripts." in flow:
        registry = load_registry()
        if registry.get("task", "scripts.Shell") is None:
            pytest.skip("needs the tiercel-scripts plugin")
    assert load_flow(flow, str(DOC), registry=registry).id


@pytest.mark.parametrize("info", REGISTRY.components(), ids=lambda i: i.type)
def test_the_doc_shows_each_example_as_declared(info):
    body = section(info.type)
    for example in info.cls.examples:
        assert f"```yaml\n{example.flow}```" in body, f"{info.type}: example `{example.title}` differs from the model's"
