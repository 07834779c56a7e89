"""Load and validate a flow: YAML with positions -> component instances -> :class:`Flow`.

Child tasks are validated by their own type before their parent, so every error carries its
full path; pydantic errors are mapped back to the line and column of the YAML source.
Nothing but :class:`FlowValidationError` escapes :func:`load_flow`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path as FsPath
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tiercel.api import Component, Task, Trigger
from tiercel.flow.errors import FlowError, FlowValidationError, Path, did_you_mean, format_path
from tiercel.flow.model import ID_PATTERN, NAMESPACE_PATTERN, TASK_ID_PATTERN, Flow, PluginDefault, _strip, child_fields
from tiercel.flow.yamlpos import Positions, YamlError, load_yaml

TASK_BLOCKS = ("tasks", "errors", "finally", "afterExecution")
_TYPE_WORDS = {
    "int": "an integer", "float": "a number", "bool": "a boolean", "string": "a string", "str": "a string",
    "list": "a list", "dict": "a mapping", "model": "a mapping", "model_attributes": "a mapping",
    "timedelta": "an ISO-8601 duration such as PT30S", "time_delta": "an ISO-8601 duration such as PT30S",
    "datetime": "an ISO-8601 date-time",
    "date": "an ISO-8601 date", "time": "an ISO-8601 time", "url": "a URL", "none": "null",
    "tuple": "a list", "set": "a list", "enum": "one of the allowed values", "decimal": "a number",
}


def load_flow(text: str, path: str | None = None, registry: Any = None) -> Flow:
    """Parse and validate a flow; raise :class:`FlowValidationError` listing every problem."""
    flow, errors = _Loader(text, path, registry).load()
    if errors or flow is None:
        raise FlowValidationError(errors or [FlowError(path, None, None, None, None, "invalid flow")])
    return flow


def load_flow_file(path: str | FsPath, registry: Any = None) -> Flow:
    """Load the flow in *path* (errors name that file)."""
    name = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowValidationError([FlowError(name, None, None, None, None, f"cannot read file: {exc}")]) from None
    return load_flow(text, name, registry)


def check_flow(text: str, path: str | None = None, registry: Any = None) -> list[FlowError]:
    """Every problem of a flow, or an empty list when it is valid."""
    return _Loader(text, path, registry).load()[1]


def validate_paths(paths: list[str | FsPath], registry: Any = None) -> list[FlowError]:
    """Validate flow files and folders (recursively: ``*.yaml``, ``*.yml``); return every error."""
    return check_paths(paths, registry)[1]


def collect_files(paths: list[str | FsPath]) -> tuple[list[FsPath], list[FlowError]]:
    """The flow files named by *paths*, and errors for missing paths.

    Folders are searched recursively for ``*.yaml`` and ``*.yml``, skipping hidden folders
    (``.github/``, ``.tiercel/``), namespace files (``_files/``) and flow tests (``*.test.yaml``).
    """
    files: list[FsPath] = []
    errors: list[FlowError] = []
    for raw in paths:
        p = FsPath(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml") and f.is_file()
                           and not any(part.startswith(".") or part == "_files" for part in f.relative_to(p).parts)
                           and not f.name.endswith((".test.yaml", ".test.yml")))
            if not found:
                errors.append(FlowError(str(p), None, None, None, None, "no flow files (*.yaml, *.yml) in this folder"))
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            errors.append(FlowError(str(p), None, None, None, None, "no such file or folder"))
    return files, errors


def check_paths(paths: list[str | FsPath], registry: Any = None, lint: bool = False,
                deployed: set[tuple[str, str]] | None = None) -> tuple[int, list[FlowError]]:
    """How many flow files *paths* name, and every error in them.

    With *lint*, also what a run would fail on (:mod:`tiercel.flow.lint`); a Subflow to a flow that
    is neither in *deployed* nor among these files (or beside them) is a warning.
    """
    files, errors = collect_files(paths)
    loaded: list[tuple[FsPath, _Loader]] = []
    known = set(deployed or ())
    for f in files:
        try:
            text = FsPath(f).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(FlowError(str(f), None, None, None, None, f"cannot read file: {exc}"))
            continue
        loader = _Loader(text, str(f), registry)
        flow, found = loader.load()
        errors.extend(found)
        if flow is not None:
            known.add((flow.namespace, flow.id))
            loaded.append((f, loader))
    if lint:
        seen = {FsPath(f).resolve() for f in files}
        for directory in {FsPath(f).parent for f, _ in loaded}:  # flows beside the checked ones
            for sibling in [*directory.glob("*.yml"), *directory.glob("*.yaml")]:
                if sibling.resolve() not in seen:
                    known.add(_flow_key(sibling))
        for _, loader in loaded:
            errors.extend(loader.lint(known))
    return len(files), errors


def _flow_key(path: FsPath) -> tuple[str, str]:
    """(namespace, id) of a flow file, read cheaply (no validation); empty when unreadable."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except Exception:
        return ("", "")
    return (str(data.get("namespace")), str(data.get("id"))) if isinstance(data, dict) else ("", "")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _merge(base: dict[str, Any], defaults: dict[str, Any], forced: bool) -> dict[str, Any]:
    out = dict(base)
    for key, value in defaults.items():
        if key in ("id", "type"):
            continue
        if key not in out:
            out[key] = copy.deepcopy(value)
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value, forced)
        elif forced:
            out[key] = copy.deepcopy(value)
    return out


def _model_at(cls: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model reached by following *loc* from *cls* (for property suggestions)."""
    current: Any = cls
    for part in loc:
        if not isinstance(part, str):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        fields = {(f.alias or n): f for n, f in current.model_fields.items()}
        fields.update(current.model_fields)
        if part not in fields:
            continue  # a union member or tag name in the location
        annotation = _strip(fields[part].annotation)
        while True:  # list[Model] / dict[str, Model] -> Model
            args = getattr(annotation, "__args__", None)
            if isinstance(annotation, type) or not args:
                break
            annotation = _strip(args[-1])
        current = annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _nested_hint(cls: type[BaseModel], name: str) -> str | None:
    """`maxAttempt` written on a task: "did you mean `retry.maxAttempt`?"."""
    for field_name, field in cls.model_fields.items():
        inner = _model_at(cls, (field_name,))
        if inner is not None and not issubclass(inner, (cls, Component)) and name in _field_names(inner):
            return f"did you mean `{field.alias or field_name}.{name}`?"
    return None


def _field_names(cls: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in cls.model_fields.items()]


class _Loader:
    def __init__(self, text: str, path: str | None, registry: Any) -> None:
        self.text = text
        self.file = path
        self.registry = registry
        self.errors: list[FlowError] = []
        self.positions = Positions()
        self.task_ids: dict[str, Path] = {}
        self.task_paths: dict[int, Path] = {}
        self.defaults: list[PluginDefault] = []
        self._flow_data: dict[str, Any] = {}
        self._raw: Any = None

    # --- errors -------------------------------------------------------------------

    def error(self, path: Path, message: str, task_id: str | None = None, suggestion: str | None = None,
              key: bool = False) -> None:
        pos = self.positions.find(path, key=key)
        line, column = pos if pos else (None, None)
        self.errors.append(FlowError(self.file, line, column, task_id, format_path(path) or None, message, suggestion))

    def lint(self, known_flows: set[tuple[str, str]] | None) -> list[FlowError]:
        """What a run of this (valid) flow would fail on; see :mod:`tiercel.flow.lint`."""
        from tiercel.flow.lint import lint

        found: list[FlowError] = []

        def report(path: Path, message: str, task_id: str | None = None, suggestion: str | None = None,
                   severity: str = "error") -> None:
            pos = self.positions.find(path)
            line, column = pos if pos else (None, None)
            found.append(FlowError(self.file, line, column, task_id, format_path(path) or None, message, suggestion,
                                   severity=severity))

        if isinstance(self._raw, dict):
            lint(self._raw, self.registry, report, known_flows)
        return sorted(found, key=lambda e: (e.line or 0, e.column or 0))

    def where(self, path: Path) -> str:
        pos = self.positions.find(path)
        return f"line {pos[0]}" if pos else format_path(path)

    # --- entry point ---------------------------------------------------------------

    def load(self) -> tuple[Flow | None, list[FlowError]]:
        try:
            flow = self._load()
        except RecursionError:
            self.error((), "the flow is nested too deeply")
            flow = None
        except Exception as exc:  # a plugin validator that raised something odd; never escape
            self.error((), f"cannot validate flow: {type(exc).__name__}: {exc}")
            flow = None
        if self.errors:
            self.errors.sort(key=lambda e: (e.line or 0, e.column or 0))
            return None, self.errors
        return flow, []

    def _load(self) -> Flow | None:
        if not isinstance(self.text, str):
            self.error((), f"expected YAML text, got {type(self.text).__name__}")
            return None
        try:
            data, self.positions = load_yaml(self.text)
        except YamlError as exc:
            lines = self.text.splitlines()
            source = lines[exc.line - 1] if exc.line and exc.line <= len(lines) else None
            self.errors.append(FlowError(self.file, exc.line, exc.column, None, None, exc.message, exc.hint, source))
            return None
        self._raw = data
        if data is None:
            self.error((), "empty document: a flow needs at least `id`, `namespace` and `tasks`")
            return None
        if not isinstance(data, dict):
            self.error((), f"a flow must be a YAML mapping with `id`, `namespace` and `tasks`, got {_describe(data)}")
            return None
        if self.registry is None:
            from tiercel.plugins import get_registry

            self.registry = get_registry()
        self._collect_defaults(data)
        flow_data = dict(data)
        for block in TASK_BLOCKS:
            items = data.get(block)
            if isinstance(items, list):
                flow_data[block] = [self._child(item, (block, i))[0] for i, item in enumerate(items)]
        triggers = data.get("triggers")
        if isinstance(triggers, list):
            flow_data["triggers"] = [self.component(item, ("triggers", i), "trigger") or self._placeholder(item, Trigger)
                                     for i, item in enumerate(triggers)]
            self._unique(triggers, "triggers", "trigger")
        for block, what in (("inputs", "input"), ("outputs", "output")):
            if isinstance(data.get(block), list):
                self._unique(data[block], block, what)
        self._flow_data = flow_data
        try:
            flow = Flow.model_validate(flow_data)
        except ValidationError as exc:
            self.map_errors(exc, (), flow_data, Flow, None)
            return None
        if self.errors:  # placeholders stand in for the components that failed
            return None
        flow._source = self.text
        flow._path = self.file
        self._check_flow(flow)
        return flow

    def _collect_defaults(self, data: dict[str, Any]) -> None:
        for key in ("pluginDefaults", "taskDefaults"):
            items = data.get(key)
            if not isinstance(items, list):
                continue
            for item in items:
                try:
                    self.defaults.append(PluginDefault.model_validate(item))
                except ValidationError:
                    pass  # reported when the flow itself is validated
        from tiercel.flow.defaults import DefaultsError, ordered, outer_defaults

        namespace = data.get("namespace")
        try:
            outer = outer_defaults(namespace) if isinstance(namespace, str) else []
        except DefaultsError as exc:
            self.error((), str(exc))
            outer = []
        self.defaults = ordered(self.defaults, outer)

    def _unique(self, items: list[Any], block: str, what: str) -> None:
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                first = seen.setdefault(item["id"], i)
                if first != i:
                    self.error((block, i, "id"), f"duplicate {what} id `{item['id']}`: also used at "
                               f"{self.where((block, first))}")

    # --- tasks and triggers ----------------------------------------------------------

    def component(self, data: Any, path: Path, kind: str) -> Any:
        """Build one task or trigger (children first); None when it has errors."""
        if not isinstance(data, dict):
            self.error(path, f"expected a {kind}: a mapping with `id` and `type`, got {_describe(data)}")
            return None
        raw_id = data.get("id")
        tid = raw_id if isinstance(raw_id, str) and kind == "task" else None
        label = "" if kind == "task" else (f"{kind} `{raw_id}`: " if isinstance(raw_id, str) else f"{kind}: ")
        if kind == "task" and tid is not None:
            self._check_task_id(tid, path)
        type_name = data.get("type")
        if type_name is None:
            self.error(path, f"{label}missing required property `type`", tid)
            return None
        if not isinstance(type_name, str):
            self.error((*path, "type"), f"{label}`type` must be a string, got {_describe(type_name)}", tid)
            return None
        info = self.registry.get(kind, type_name)
        if info is None:
            other = self.registry.find(type_name)
            if other is not None:
                self.error((*path, "type"), f"{label}`{type_name}` is a {other.kind}, not a {kind}", tid)
            else:
                hint = self.registry.suggest(kind, type_name)
                self.error((*path, "type"), f"{label}unknown {kind} type `{type_name}`", tid,
                           f"did you mean {hint}?" if hint else self._plugin_hint(type_name))
            self._scan_ids(data, path)
            return None
        cls = info.cls
        values = {k: v for k, v in data.items() if k != "type"}
        names = (type_name, cls.type, *cls.aliases)
        for default in self.defaults:
            if default.matches(names):
                given = default.values
                if default.type.rstrip(".") not in names:  # a prefix: only what this type takes
                    known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
                    given = {k: v for k, v in given.items() if k in known}
                values = _merge(values, given, default.forced)
        from_defaults = {k for k in values if k not in data}
        failed = False
        errors_before = len(self.errors)
        for field in child_fields(cls):
            key = field.key if field.key in values else field.name
            if key not in values:
                continue
            built, ok = self._children(values[key], (*path, key), field)
            values[key] = built
            failed = failed or not ok
        try:
            instance = cls.model_validate(values, context={"deploy": True})
        except ValidationError as exc:
            # a model-level check (a Dag's own cycle check) repeats what was already located precisely
            located = any(e.property and e.property.startswith(format_path(path)) for e in self.errors[errors_before:])
            self.map_errors(exc, path, values, cls, tid, label, skip_model_level=located, from_defaults=from_defaults)
            return None
        except Exception as exc:  # a plugin's own validator raising something else
            self.error(path, f"{label}invalid {kind}: {type(exc).__name__}: {exc}", tid)
            return None
        if failed:
            return None
        self.task_paths[id(instance)] = path
        return instance

    def _plugin_hint(self, type_name: str) -> str | None:
        """For `kafka.Produce`: say that tiercel-kafka failed to load, or is not installed."""
        prefix = type_name.split(".", 1)[0]
        if "." not in type_name or prefix in ("io", "com", "org"):
            return None
        plugin = self.registry.plugins.get(f"tiercel-{prefix}")
        if plugin is not None and (plugin.skipped or plugin.errors):
            return f"plugin {plugin.name} is installed but did not load: {plugin.skipped or plugin.errors[0]}"
        if plugin is None and not any(t.startswith(prefix + ".") for k in ("task", "trigger") for t in self.registry.types(k)):
            return f"is the tiercel-{prefix} plugin installed? see `tiercel plugins list`"
        return None

    def _placeholder(self, data: Any, base: type[BaseModel] = Task) -> Any:
        tid = data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else "invalid"
        return base.model_construct(id=tid)

    def _child(self, data: Any, path: Path) -> tuple[Any, bool]:
        built = self.component(data, path, "task")
        return (built, True) if built is not None else (self._placeholder(data), False)

    def _children(self, value: Any, path: Path, field: Any) -> tuple[Any, bool]:
        ok = True
        if field.shape == "single":
            if isinstance(value, dict):
                return self._child(value, path)
            return value, True  # wrong shape: the parent's validation reports it
        if field.shape == "dict":
            if not isinstance(value, dict):
                return value, True
            out = {}
            for case, tasks in value.items():
                if isinstance(tasks, list):
                    out[case] = []
                    for i, item in enumerate(tasks):
                        built, good = self._child(item, (*path, case, i))
                        out[case].append(built)
                        ok = ok and good
                else:
                    out[case] = tasks
            return out, ok
        if not isinstance(value, list):
            return value, True
        if field.shape == "list":
            out_list = []
            for i, item in enumerate(value):
                built, good = self._child(item, (*path, i))
                out_list.append(built)
                ok = ok and good
            return out_list, ok
        # wrapped: [{task: {...}, dependsOn: [...]}, …]
        out_list = []
        for i, item in enumerate(value):
            if isinstance(item, dict) and isinstance(item.get("task"), dict):
                built, good = self._child(item["task"], (*path, i, "task"))
                item = {**item, "task": built}
                ok = ok and good
            out_list.append(item)
        if "dependsOn" in field.wrapper.model_fields:
            self._check_dag(value, path)
        return out_list, ok

    def _check_task_id(self, tid: str, path: Path) -> None:
        if not re.match(TASK_ID_PATTERN, tid):
            self.error((*path, "id"), f"invalid task id `{tid}`: use letters, digits, `_` and `-`, "
                       "starting with a letter or a digit", tid)
        first = self.task_ids.get(tid)
        if first is None:
            self.task_ids[tid] = path
        elif first != path:
            a, b = self.positions.find((*first, "id")), self.positions.find((*path, "id"))
            where = f"lines {a[0]} and {b[0]}" if a and b else f"{format_path(first)} and {format_path(path)}"
            self.error((*path, "id"), f"duplicate task id `{tid}`: task ids must be unique in the flow, "
                       f"nested ones included (used at {where})", tid)

    def _scan_ids(self, data: dict[str, Any], path: Path) -> None:
        """Record ids of tasks nested in a task of unknown type (for duplicate checks)."""
        for key, value in data.items():
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict) and isinstance(item.get("id"), str) and "type" in item:
                        self._check_task_id(item["id"], (*path, key, i))
                        self._scan_ids(item, (*path, key, i))

    def _check_dag(self, items: list[Any], path: Path) -> None:
        ids: dict[str, int] = {}
        graph: dict[str, list[str]] = {}
        for i, item in enumerate(items):
            if isinstance(item, dict) and isinstance(item.get("task"), dict) and isinstance(item["task"].get("id"), str):
                ids[item["task"]["id"]] = i
        for tid, i in ids.items():
            deps = items[i].get("dependsOn") or []
            graph[tid] = []
            if not isinstance(deps, list):
                continue
            for j, dep in enumerate(deps):
                if not isinstance(dep, str):
                    continue
                if dep not in ids:
                    self.error((*path, i, "dependsOn", j), f"dependsOn `{dep}`: no task `{dep}` in this dag", tid,
                               did_you_mean(dep, list(ids)))
                else:
                    graph[tid].append(dep)
        state: dict[str, int] = {}

        def visit(node: str, trail: list[str]) -> list[str] | None:
            state[node] = 1
            for dep in graph.get(node, []):
                if state.get(dep) == 1:
                    return [*trail[trail.index(dep):], dep] if dep in trail else [node, dep]
                if dep not in state:
                    cycle = visit(dep, [*trail, dep])
                    if cycle:
                        return cycle
            state[node] = 2
            return None

        for node in graph:
            if node not in state:
                cycle = visit(node, [node])
                if cycle:
                    self.error((*path, ids[cycle[0]], "dependsOn"),
                               f"dependency cycle: {' -> '.join(cycle)}", cycle[0])
                    return

    # --- whole-flow checks --------------------------------------------------------------

    def _check_flow(self, flow: Flow) -> None:
        for task, _, _ in flow.walk():
            namespace, flow_id = getattr(task, "namespace", None), getattr(task, "flowId", None)
            if namespace == flow.namespace and flow_id == flow.id:
                path = self.task_paths.get(id(task), ())
                self.error((*path, "flowId"), f"subflow calls its own flow `{flow.namespace}.{flow.id}`: "
                           "a flow cannot start itself as a subflow", task.id)

    # --- pydantic errors -> FlowErrors -----------------------------------------------------

    def map_errors(self, exc: ValidationError, base: Path, data: Any, cls: type[BaseModel], task_id: str | None,
                   label: str = "", skip_model_level: bool = False, from_defaults: set[str] | None = None) -> None:
        grouped: dict[Path, list[dict[str, Any]]] = {}
        for err in exc.errors(include_url=False):
            if skip_model_level and not err["loc"]:
                continue
            rel = self._data_path(data, err["loc"], err["type"])
            grouped.setdefault(rel, []).append(err)
        for rel, errs in grouped.items():
            kinds = {e["type"] for e in errs}
            typed = [e for e in errs if _expected(e)]
            if len(typed) > 1 and len(typed) == len(errs):
                words = list(dict.fromkeys(_expected(e) for e in typed))
                prop = format_path(rel)
                self.error((*base, *rel), f"{label}`{prop}`: expected {' or '.join(words)}, got {_describe(errs[0]['input'])}", task_id)
                continue
            for err in errs if "union_tag_invalid" not in kinds else [e for e in errs if e["type"] == "union_tag_invalid"]:
                self._one(err, base, rel, cls, task_id, label)
                if from_defaults and rel and rel[0] in from_defaults:
                    self.errors[-1].message += " (set by pluginDefaults)"

    def _data_path(self, data: Any, loc: tuple[Any, ...], kind: str) -> Path:
        """The part of *loc* that exists in *data* (union member and tag names dropped)."""
        path: list[str | int] = []
        current = data
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(current, dict) and part in current:
                path.append(part)
                current = current[part]
            elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
                path.append(part)
                current = current[part]
            elif last and kind in ("missing", "extra_forbidden") and isinstance(part, str):
                path.append(part)
            elif isinstance(current, BaseModel):
                break
        return tuple(path)

    def _one(self, err: dict[str, Any], base: Path, rel: Path, cls: type[BaseModel], task_id: str | None,
             label: str) -> None:
        kind, loc = err["type"], err["loc"]
        prop = format_path(rel)
        if cls is Flow and len(rel) >= 2 and rel[0] in ("inputs", "outputs") and isinstance(rel[1], int):
            item = self._flow_data.get(rel[0])[rel[1]] if isinstance(self._flow_data.get(rel[0]), list) else None
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                label = f"{rel[0][:-1]} `{item['id']}`: "
            else:
                label = f"{format_path(rel[:2])}: "
            base, rel, loc = (*base, *rel[:2]), rel[2:], loc[2:]
            prop = format_path(rel)
        full = (*base, *rel)
        if kind == "extra_forbidden":
            name = rel[-1] if rel else loc[-1]
            model = _model_at(cls, loc[:-1]) or cls
            owner = f" in `{format_path(rel[:-1])}`" if len(rel) > 1 else ""
            self.error(full, f"{label}unknown property `{name}`{owner}", task_id,
                       did_you_mean(str(name), _field_names(model)) or _nested_hint(model, str(name)), key=True)
        elif kind == "missing":
            name = rel[-1] if rel else loc[-1]
            owner = f" in `{format_path(rel[:-1])}`" if len(rel) > 1 else ""
            self.error(full[:-1], f"{label}missing required property `{name}`{owner}", task_id)
        elif kind == "union_tag_invalid":
            ctx = err.get("ctx") or {}
            tag = ctx.get("tag", "")
            expected = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
            what = f"`{prop}`: unknown type" if prop else f"unknown {label.split(' ')[0]} type"
            self.error((*full, "type"), f"{label}{what} `{tag}`", task_id,
                       did_you_mean(str(tag), expected, quote=False) if tag else None)
        elif kind == "union_tag_not_found":
            self.error(full, f"{label}missing required property `type`" + (f" in `{prop}`" if prop else ""), task_id)
        elif kind == "string_pattern_mismatch" and cls is Flow and not base and rel in (("id",), ("namespace",)):
            value = err["input"]
            if rel == ("id",):
                self.error(full, f"invalid flow id `{value}`: must match {ID_PATTERN} (letters, digits, `.`, `_`, `-`, "
                           "starting with a letter or a digit)")
            else:
                self.error(full, f"invalid namespace `{value}`: must match {NAMESPACE_PATTERN} (lower-case letters, "
                           "digits, `.`, `_`, `-`, starting with a letter or a digit)", None,
                           f"did you mean `{value.lower()}`?" if isinstance(value, str) and re.match(NAMESPACE_PATTERN, value.lower()) else None)
        elif kind == "string_pattern_mismatch":
            pattern = (err.get("ctx") or {}).get("pattern", "")
            self.error(full, f"{label}`{prop}`: {_describe(err['input'])} does not match {pattern}", task_id)
        elif cls is Flow and not base and rel == ("tasks",) and kind == "too_short":
            self.error(full, "`tasks` is empty: a flow needs at least one task")
        elif kind == "too_short":
            ctx = err.get("ctx") or {}
            need, got = ctx.get("min_length", 1), ctx.get("actual_length", 0)
            self.error(full, f"{label}`{prop}` needs at least {need} item{'s' if need != 1 else ''}, "
                       f"got {got or 'none'}", task_id)
        elif _expected(err):
            value = err["input"]
            hint = ("write it as a list: start the item with `- `"
                    if kind == "list_type" and isinstance(value, dict) and "type" in value else None)
            if isinstance(value, bool) and kind == "string_type":
                hint = "YAML reads unquoted yes/no/on/off/true/false as a boolean: quote the value"
            self.error(full, f"{label}`{prop}`: expected {_expected(err)}, got {_describe(value)}", task_id, hint)
        else:
            msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ").replace("Input should be", "must be")
            self.error(full, f"{label}`{prop}`: {msg}" if prop else f"{label}{msg}", task_id)


def _expected(err: dict[str, Any]) -> str | None:
    kind = err["type"]
    if kind == "literal_error":
        return "one of " + str((err.get("ctx") or {}).get("expected", "")).replace("'", "`")
    for suffix in ("_type", "_parsing"):
        if kind.endswith(suffix):
            word = kind.removesuffix(suffix)
            if word == "is_instance_of":
                return None
            return _TYPE_WORDS.get(word, word.replace("_", " "))
    return None

