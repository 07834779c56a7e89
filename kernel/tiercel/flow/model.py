"""The flow model: Kestra's dialect in pydantic.

Tasks and triggers inside a :class:`Flow` are instances of the registered component
classes (built by :mod:`tiercel.flow.loader`); the fields here only hold them.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    field_validator,
    model_validator,
)

from tiercel.api import Retry, Task, Trigger

ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
TASK_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"
INPUT_ID_PATTERN = r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


# --- inputs --------------------------------------------------------------------------

class InputDependsOn(_Model):
    """Show this input only once others are set (and the condition holds)."""

    inputs: list[str] = Field(default_factory=list, description="Ids of the inputs this one depends on.")
    condition: str | None = Field(None, description="Expression that must be true for the input to apply.")


class _Input(_Model):
    id: str = Field(pattern=INPUT_ID_PATTERN, max_length=100, description="Identifier, read as `inputs.<id>`.")
    description: str | None = Field(None, description="What the input is for, in Markdown.")
    displayName: str | None = Field(None, max_length=64, description="Label shown instead of the id.")
    required: bool = Field(True, description="An execution cannot start without a value (or a default).")
    defaults: Any = Field(None, description="Value used when none is given.")
    dependsOn: InputDependsOn | None = Field(None, description="Inputs this one depends on.")
    prefill: Any = Field(None, description="Value suggested in forms, not applied when absent.")

    @model_validator(mode="after")
    def _check_defaults(self) -> _Input:
        if self.defaults is not None:
            from tiercel.flow.inputs import check_default

            problem = check_default(self)
            if problem:
                raise ValueError(f"invalid default: {problem}")
        return self


class StringInput(_Input):
    """Free text, optionally checked against a regular expression."""

    type: Literal["STRING"]
    validator: str | None = Field(None, description="Regular expression the whole value must match.")

    @field_validator("validator")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class SecretInput(StringInput):
    """A secret string: masked in logs and outputs."""

    type: Literal["SECRET"]  # type: ignore[assignment]


class IntInput(_Input):
    """A whole number, optionally bounded."""

    type: Literal["INT"]
    min: int | None = Field(None, description="Smallest accepted value.")
    max: int | None = Field(None, description="Largest accepted value.")


class FloatInput(_Input):
    """A number, optionally bounded."""

    type: Literal["FLOAT"]
    min: float | None = Field(None, description="Smallest accepted value.")
    max: float | None = Field(None, description="Largest accepted value.")


class BooleanInput(_Input):
    """true or false."""

    type: Literal["BOOLEAN"]


class SelectInput(_Input):
    """One value among ``values``."""

    type: Literal["SELECT", "ENUM"]
    values: list[str] | str | None = Field(None, description="Accepted values (or an expression giving them).")
    expression: str | None = Field(None, description="Expression that gives the accepted values.")
    allowCustomValue: bool = Field(False, description="Accept a value outside ``values``.")
    isRadio: bool = Field(False, description="Show as radio buttons in forms.")


class MultiselectInput(_Input):
    """Several values among ``values``."""

    type: Literal["MULTISELECT"]
    values: list[str] | str | None = Field(None, description="Accepted values (or an expression giving them).")
    options: list[str] | None = Field(None, description="Deprecated name of ``values``.")
    expression: str | None = Field(None, description="Expression that gives the accepted values.")
    allowCustomValue: bool = Field(False, description="Accept values outside ``values``.")
    itemType: Literal["STRING", "INT", "FLOAT", "BOOLEAN"] = Field("STRING", description="Type of each value.")


class _TemporalInput(_Input):
    after: str | None = Field(None, description="Values must be later than this.")
    before: str | None = Field(None, description="Values must be earlier than this.")


class DatetimeInput(_TemporalInput):
    """A date and time, ISO-8601 (``2024-01-31T10:00:00Z``)."""

    type: Literal["DATETIME"]


class DateInput(_TemporalInput):
    """A date, ISO-8601 (``2024-01-31``)."""

    type: Literal["DATE"]


class TimeInput(_TemporalInput):
    """A time of day, ISO-8601 (``10:30:00``)."""

    type: Literal["TIME"]


class DurationInput(_Input):
    """A duration, ISO-8601 (``PT30S``), optionally bounded."""

    type: Literal["DURATION"]
    min: timedelta | None = Field(None, description="Shortest accepted duration.")
    max: timedelta | None = Field(None, description="Longest accepted duration.")


class FileInput(_Input):
    """A file: a local path is uploaded to internal storage and the input becomes its tiercel:// URI."""

    type: Literal["FILE"]
    extension: str | None = Field(None, description="Required file extension (``.csv``).")


class JsonInput(_Input):
    """A JSON document (given as text, or as a value through the API)."""

    type: Literal["JSON"]


class YamlInput(_Input):
    """A YAML document."""

    type: Literal["YAML"]


class UriInput(_Input):
    """An absolute URI (``https://…``)."""

    type: Literal["URI"]


class EmailInput(_Input):
    """An e-mail address."""

    type: Literal["EMAIL"]


class ArrayInput(_Input):
    """A list of values of one type."""

    type: Literal["ARRAY"]
    itemType: Literal["STRING", "INT", "FLOAT", "BOOLEAN", "DATETIME", "DATE", "TIME", "DURATION",
                      "JSON", "URI", "EMAIL"] = Field(description="Type of each item.")


INPUT_CLASSES = (StringInput, SecretInput, IntInput, FloatInput, BooleanInput, SelectInput, MultiselectInput,
                 DatetimeInput, DateInput, TimeInput, DurationInput, FileInput, JsonInput, YamlInput,
                 UriInput, EmailInput, ArrayInput)

Input = Annotated[Union[INPUT_CLASSES], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007


# --- the rest of the flow ------------------------------------------------------------

class Output(_Model):
    """A flow output, stored in the execution's outputs."""

    id: str = Field(pattern=INPUT_ID_PATTERN, description="Identifier of the output.")
    type: str = Field("STRING", description="Type of the value (STRING, INT, JSON, FILE, …).")
    value: Any = Field(description="Value, usually an expression over task outputs.")
    description: str | None = Field(None, description="What the output holds.")
    displayName: str | None = Field(None, max_length=64, description="Label shown instead of the id.")
    required: bool = Field(True, description="Fail the execution when the value is missing.")


class Concurrency(_Model):
    """How many executions of the flow may run at once."""

    limit: int = Field(gt=0, description="Maximum number of running executions.")
    behavior: Literal["QUEUE", "CANCEL", "FAIL"] = Field("QUEUE", description="What happens to an execution over the limit.")


class PluginDefault(_Model):
    """Default property values for every task or trigger of a type (or of a type prefix)."""

    type: str = Field(description="A type name, or a prefix such as `scripts` or `io.kestra.plugin.scripts`.")
    values: dict[str, Any] = Field(default_factory=dict, description="Property values.")
    forced: bool = Field(False, description="Override values set on the task itself.")

    def matches(self, names: tuple[str, ...]) -> bool:
        prefix = self.type.rstrip(".")
        return any(n == prefix or n.startswith(prefix + ".") for n in names)


class SLA(_Model):
    """A service-level agreement of the flow's executions (Kestra's ``sla``): a time limit
    (MAX_DURATION) or a condition checked at the end (EXECUTION_ASSERTION). On violation the
    ``labels`` are added to the execution and it ends FAILED, CANCELLED, or as it was (NONE)."""

    id: str = Field(description="Identifier of the SLA, named in the violation message.")
    type: Literal["MAX_DURATION", "EXECUTION_ASSERTION"] = Field(description="MAX_DURATION or EXECUTION_ASSERTION.")
    behavior: Literal["FAIL", "CANCEL", "NONE"] = Field("FAIL", description="On violation: FAIL or CANCEL the execution, or NONE (labels and a log line only).")
    duration: timedelta | None = Field(None, description="MAX_DURATION: how long an execution may run (ISO-8601, e.g. PT2H).")
    assert_: str | None = Field(None, alias="assert", description="EXECUTION_ASSERTION: an expression that must be true when the execution ends.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels added to the execution on violation (a map or a list of {key, value}).")

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if isinstance(value, list):
            value = {str(item.get("key")): item.get("value") for item in value if isinstance(item, dict)}
        if isinstance(value, dict):
            value = {str(k): _label_text(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _fields_of_type(self) -> SLA:
        if self.type == "MAX_DURATION" and self.duration is None:
            raise ValueError(f"sla `{self.id}`: MAX_DURATION needs `duration`")
        if self.type == "EXECUTION_ASSERTION" and not self.assert_:
            raise ValueError(f"sla `{self.id}`: EXECUTION_ASSERTION needs `assert`")
        return self


class Check(_Model):
    """A check made before an execution is created (Kestra's ``checks``): when ``condition`` is false,
    ``message`` is shown and ``behavior`` decides: BLOCK_EXECUTION (none is created), FAIL_EXECUTION
    (created FAILED, no task runs) or CREATE_EXECUTION (created anyway, the message logged)."""

    condition: str = Field(validation_alias=AliasChoices("condition", "when"), description="An expression that must be true (Kestra 2.0 calls it `when`).")
    message: str = Field(description="What is shown when the condition is false.")
    style: Literal["INFO", "SUCCESS", "WARNING", "ERROR"] = Field("INFO", description="How the message is styled: INFO, SUCCESS, WARNING or ERROR.")
    behavior: Literal["BLOCK_EXECUTION", "FAIL_EXECUTION", "CREATE_EXECUTION"] = Field("BLOCK_EXECUTION", description="BLOCK_EXECUTION, FAIL_EXECUTION or CREATE_EXECUTION.")


#: System labels a flow may carry (Kestra's `system.readOnly`: the UI refuses to edit it).
FLOW_SYSTEM_LABELS = frozenset({"system.readOnly"})
#: Set on every execution: the id of the execution that started the chain (subflows inherit it).
CORRELATION_LABEL = "system.correlationId"


class Flow(_Model):
    """A flow: tasks run in order, with inputs, triggers, outputs and error handlers."""

    id: str = Field(pattern=ID_PATTERN, max_length=100, description="Identifier, unique in its namespace.")
    namespace: str = Field(pattern=NAMESPACE_PATTERN, max_length=150, description="Dotted lower-case folder (`company.team`).")
    revision: int | None = Field(None, ge=1, description="Set by the server on each save.")
    description: str | None = Field(None, description="What the flow does, in Markdown.")
    labels: dict[str, str] = Field(default_factory=dict, description="Key/values copied to executions (list of {key, value} or a map).")
    inputs: list[Input] = Field(default_factory=list, description="Typed parameters of an execution.")
    variables: dict[str, Any] = Field(default_factory=dict, description="Static values read as `vars.<name>`.")
    tasks: list[SerializeAsAny[Task]] = Field(min_length=1, description="Tasks run in order.")
    errors: list[SerializeAsAny[Task]] = Field(default_factory=list, description="Tasks run when the execution fails.")
    finally_: list[SerializeAsAny[Task]] = Field(default_factory=list, alias="finally", description="Tasks run at the end, whatever the outcome.")
    afterExecution: list[SerializeAsAny[Task]] = Field(default_factory=list, description="Tasks run once the execution is terminal; they do not change its state.")
    triggers: list[SerializeAsAny[Trigger]] = Field(default_factory=list, description="What starts executions.")
    outputs: list[Output] = Field(default_factory=list, description="Values the execution returns.")
    concurrency: Concurrency | None = Field(None, description="Limit on executions running at once.")
    retry: Retry | None = Field(None, description="Default retry of every task.")
    pluginDefaults: list[PluginDefault] = Field(default_factory=list, description="Default properties per task or trigger type, applied at load.")
    disabled: bool = Field(False, description="Start no new executions.")
    checks: list[Check] = Field(default_factory=list, description="Conditions checked before an execution is created; each blocks, fails or only warns.")
    sla: list[SLA] = Field(default_factory=list, description="Service-level agreements: MAX_DURATION or EXECUTION_ASSERTION, each with a behavior on violation.")

    _source: str | None = PrivateAttr(None)
    _path: str | None = PrivateAttr(None)
    _index: dict[str, Task] | None = PrivateAttr(None)

    TASK_BLOCKS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("tasks", "tasks"), ("errors", "errors"), ("finally_", "finally"), ("afterExecution", "afterExecution"))

    @property
    def source(self) -> str | None:
        """The YAML text the flow was loaded from."""
        return self._source

    @property
    def path(self) -> str | None:
        """The file the flow was loaded from, if any."""
        return self._path

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if isinstance(value, list):
            out: dict[str, Any] = {}
            for i, item in enumerate(value):
                if not (isinstance(item, dict) and set(item) == {"key", "value"}):
                    raise ValueError(f"labels[{i}] must be a mapping with `key` and `value`")
                out[str(item["key"])] = item["value"]
            value = out
        if isinstance(value, dict):
            value = {str(k): _label_text(v) for k, v in value.items()}
            reserved = [k for k in value if k.startswith("system.") and k not in FLOW_SYSTEM_LABELS]
            if reserved:
                raise ValueError(f"label `{reserved[0]}`: the `system.` prefix is reserved")
        return value

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and "taskDefaults" in data:  # deprecated Kestra name
            data = dict(data)
            data["pluginDefaults"] = [*(data.get("pluginDefaults") or []), *(data.pop("taskDefaults") or [])]
        return data

    @model_validator(mode="before")
    @classmethod
    def _kestra_forms(cls, data: Any) -> Any:
        """Kestra's older or catalogue forms: inputs with `name` (not `id`), input type `BOOL`, and the
        `extend:` block of Kestra's blueprint catalogue (metadata, ignored with a note)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "extend" in data:
            import warnings

            data.pop("extend")
            warnings.warn("the top-level `extend:` block (Kestra blueprint metadata) is ignored", UserWarning,
                          stacklevel=2)
        if isinstance(data.get("inputs"), list):
            data["inputs"] = [_kestra_input(i) for i in data["inputs"]]
        return data

    def walk(self) -> Iterator[tuple[Task, Task | None, str]]:
        """Every task of the flow, depth first: ``(task, parent or None, block name)``.

        Block names are the YAML names: ``tasks``, ``errors``, ``finally``, ``afterExecution``
        at the top, a flowable's own (``then``, ``else``, ``cases.<key>``, …) below.
        """
        for attr, block in self.TASK_BLOCKS:
            for task in getattr(self, attr):
                yield task, None, block
                yield from _walk(task)

    def task(self, task_id: str) -> Task:
        """The task with this id, wherever it is nested; KeyError when there is none."""
        if self._index is None:
            self._index = {t.id: t for t, _, _ in self.walk()}
        try:
            return self._index[task_id]
        except KeyError:
            raise KeyError(f"flow {self.namespace}.{self.id} has no task `{task_id}`") from None

    def to_dict(self) -> dict[str, Any]:
        """The flow as JSON-ready data in its YAML shape: aliases as keys, every task with its ``type``.

        Only properties that were set (in the YAML or by plugin defaults) are included.
        ``model_dump`` would drop nested tasks' own fields and their types.
        """
        return plain(self)


def plain(value: Any) -> Any:
    """JSON-ready data of a model, component, list or mapping (components carry their ``type``)."""
    from pydantic_core import to_jsonable_python

    if isinstance(value, BaseModel):
        out: dict[str, Any] = {}
        if getattr(type(value), "type", None) and isinstance(type(value).type, str) and "type" not in type(value).model_fields:
            out["type"] = type(value).type
        for name, field in type(value).model_fields.items():
            if name in value.model_fields_set:
                out[field.alias or name] = plain(getattr(value, name))
        return out
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return to_jsonable_python(value)


def _kestra_input(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    spec = dict(spec)
    if "id" not in spec and "name" in spec:
        spec["id"] = spec.pop("name")
    if spec.get("type") == "BOOL":
        spec["type"] = "BOOLEAN"
    return spec


def _label_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _walk(task: Task) -> Iterator[tuple[Task, Task | None, str]]:
    for block, children in iter_children(task):
        for child in children:
            yield child, task, block
            yield from _walk(child)


# --- child tasks, found from field annotations ----------------------------------------

@dataclass(frozen=True)
class ChildField:
    """A field of a component that holds tasks.

    ``shape`` is ``list`` (``list[Task]``), ``single`` (``Task | None``), ``dict``
    (``dict[str, list[Task]]``) or ``wrapped`` (a list of small models with a ``task``
    field, like Dag's ``{task, dependsOn}``).
    """

    name: str
    key: str
    shape: str
    wrapper: type[BaseModel] | None = None


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return annotation


def _is_task(annotation: Any) -> bool:
    annotation = _strip(annotation)
    return isinstance(annotation, type) and issubclass(annotation, Task)


def _shape(annotation: Any) -> tuple[str, type[BaseModel] | None] | None:
    annotation = _strip(annotation)
    if _is_task(annotation):
        return "single", None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and args:
        item = _strip(args[0])
        if _is_task(item):
            return "list", None
        if isinstance(item, type) and issubclass(item, BaseModel) and not issubclass(item, Task):
            inner = item.model_fields.get("task")
            if inner is not None and _is_task(inner.annotation):
                return "wrapped", item
    if origin is dict and len(args) == 2 and get_origin(_strip(args[1])) is list:
        if _is_task(get_args(_strip(args[1]))[0]):
            return "dict", None
    return None


_CHILD_CACHE: dict[type, tuple[ChildField, ...]] = {}


def child_fields(cls: type[BaseModel]) -> tuple[ChildField, ...]:
    """The fields of *cls* that hold child tasks (cached per class)."""
    cached = _CHILD_CACHE.get(cls)
    if cached is None:
        found = []
        for name, info in cls.model_fields.items():
            shape = _shape(info.annotation)
            if shape:
                found.append(ChildField(name, info.alias or name, shape[0], shape[1]))
        cached = _CHILD_CACHE[cls] = tuple(found)
    return cached


def iter_children(task: Task) -> Iterator[tuple[str, list[Task]]]:
    """The child tasks of *task* by block: ``(block name, tasks)``, in field order."""
    for field in child_fields(type(task)):
        value = getattr(task, field.name, None)
        if value is None:
            continue
        if field.shape == "single":
            yield field.key, [value]
        elif field.shape == "list":
            yield field.key, list(value)
        elif field.shape == "wrapped":
            yield field.key, [item.task for item in value]
        else:
            for case, tasks in value.items():
                yield f"{field.key}.{case}", list(tasks)
