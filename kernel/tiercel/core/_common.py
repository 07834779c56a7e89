"""Small shared pieces of the core plugin: text coercion, child task lists, labels."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tiercel.api import Task


def to_text(value: Any) -> Any:
    """Print a native scalar as Kestra would (a rendered ``{{ 6 * 7 }}`` becomes ``"42"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def to_json_text(value: Any) -> Any:
    """Like :func:`to_text`, and structures become JSON text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return to_text(value)


#: A string property whose rendered value may be a number or a boolean.
Text = Annotated[str, BeforeValidator(to_text)]
#: A string property whose rendered value may be any JSON value (printed as JSON).
AnyText = Annotated[str, BeforeValidator(to_json_text)]

#: Child tasks: typed so that flow validation finds them generically.
Tasks = list[Task]


class Label(BaseModel):
    """One label in list form: ``{key: env, value: prod}``."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    key: str = Field(description="Label name.")
    value: Text = Field(description="Label value.")


#: Labels as a map or as Kestra's list of ``{key, value}``.
LabelsValue = dict[str, Text] | list[Label]


def labels_dict(labels: LabelsValue | None) -> dict[str, str]:
    """Labels in map form, whichever form the flow used."""
    if not labels:
        return {}
    if isinstance(labels, dict):
        return dict(labels)
    # list form; raw mappings when deploy-time validation kept an expression in it
    return {str(i["key"]) if isinstance(i, dict) else i.key: i["value"] if isinstance(i, dict) else i.value
            for i in labels}


def rendered_labels(render: Any, labels: LabelsValue | str | None) -> dict[str, str]:
    """Labels rendered with *render* (either form, or an expression giving either), values as text."""
    if isinstance(labels, str):
        labels = render(labels)
    pairs = labels_dict(labels) if not isinstance(labels, list) or all(isinstance(i, Label) for i in labels) else \
        {str(i["key"]): i["value"] for i in labels}
    return {str(k): str(json_text(v)) for k, v in render(pairs).items()}


def json_text(value: Any) -> Any:
    """A label or message value as text: JSON (compact) for structures, Kestra's spelling for scalars."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    if value is None:
        return ""
    return to_text(value)


def check_user_labels(labels: LabelsValue | None) -> LabelsValue | None:
    """Refuse the ``system.`` prefix, which Kestra reserves for the platform."""
    for key in labels_dict(labels):
        if key.startswith("system."):
            raise ValueError(f"label `{key}`: the `system.` prefix is reserved; choose another key")
    return labels
