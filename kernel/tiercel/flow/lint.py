"""What ``tiercel validate`` checks beyond the schema: what a run would fail on, found before it runs.

Every expression is parsed (a syntax error names the property, and the column in the expression),
and references are checked where they can be statically: ``inputs.x`` of an undeclared input,
``vars.x`` undeclared, ``outputs.t`` of a task that does not exist or runs later, an unknown
function, filter or test, an unknown ``taskRunner`` type; a Subflow to a flow that is neither
deployed nor among the flows validated with it is a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from tiercel.flow.errors import Path, did_you_mean, format_path

#: Functions the engine adds per execution (tiercel.engine.runtime), besides the renderer's globals.
ENGINE_FUNCTIONS = frozenset({"secret", "kv", "read", "render", "errorLogs", "fileSize", "isFileEmpty", "fileURI",
                              "fileExists"})
TASK_BLOCKS = ("tasks", "errors", "finally", "afterExecution")

Report = Callable[..., None]  # report(path, message, task_id=None, suggestion=None, severity="error")


_ENVIRONMENTS: dict[int, tuple[Any, Any]] = {}


def _environment(registry: Any) -> Any:
    """The sandboxed environment expressions render in (its functions, filters and tests), one per registry."""
    cached = _ENVIRONMENTS.get(id(registry))
    if cached is None or cached[0] is not registry:
        from tiercel.expr.renderer import JinjaRenderer

        env = JinjaRenderer(functions=registry.extensions("function"), filters=registry.extensions("filter"))._env
        cached = _ENVIRONMENTS[id(registry)] = (registry, env)
    return cached[1]


_PARSED: dict[tuple[int, str], Any] = {}


def _parsed(env: Any, source: str) -> Any:
    """The parse tree of *source* (read, never changed), cached: many flows repeat the same expressions."""
    key = (id(env), source)
    tree = _PARSED.get(key)
    if tree is None:
        if len(_PARSED) > 20_000:
            _PARSED.clear()
        tree = _PARSED[key] = env.parse(source)
    return tree


class _Task:
    __slots__ = ("id", "path", "order", "ancestors", "dag")

    def __init__(self, tid: str, path: Path, order: int, ancestors: tuple[str, ...], dag: str | None) -> None:
        self.id, self.path, self.order, self.ancestors, self.dag = tid, path, order, ancestors, dag


def _tasks(data: Any, path: Path, ancestors: tuple[str, ...], dag: str | None, out: dict[str, _Task]) -> None:
    """Every task of the raw flow in document order, with its enclosing tasks."""
    if isinstance(data, list):
        for i, item in enumerate(data):
            _tasks(item, (*path, i), ancestors, dag, out)
        return
    if not isinstance(data, dict):
        return
    if _is_task(data):
        tid = data["id"]
        out.setdefault(tid, _Task(tid, path, len(out), ancestors, dag))
        ancestors = (*ancestors, tid)
        if str(data["type"]).endswith((".Dag", "flow.Dag")):
            dag = tid
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            _tasks(value, (*path, key), ancestors, dag, out)


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


def lint(data: dict[str, Any], registry: Any, report: Report, known_flows: set[tuple[str, str]] | None = None) -> None:
    """Check the raw flow *data* (as read from YAML); *report* each problem at its path."""
    from jinja2 import nodes
    from jinja2.exceptions import TemplateSyntaxError

    from tiercel.expr.errors import syntax_message

    env = _environment(registry)
    functions = set(env.globals) | ENGINE_FUNCTIONS
    inputs = {str(i.get("id") or i.get("name")) for i in data.get("inputs") or [] if isinstance(i, dict)}
    variables = set(data.get("variables") or {}) if isinstance(data.get("variables"), dict) else None
    tasks: dict[str, _Task] = {}
    for block in TASK_BLOCKS:
        _tasks(data.get(block), (block,), (), None, tasks)
    if variables is not None:  # variables a SetVariables task adds at run time are declared too
        for item in _task_items(data):
            if str(item["type"]).endswith("SetVariables") and isinstance(item.get("variables"), dict):
                variables |= set(item["variables"])

    def check(path: Path, source: str, owner: _Task | None, check_outputs: bool) -> None:
        inner = path[len(owner.path):] if owner and path[:len(owner.path)] == owner.path else path
        prop = f"property `{format_path(inner)}`: "

        def report_here(message: str, task_id: str | None, suggestion: str | None = None) -> None:
            report(path, prop + message, task_id, suggestion)

        try:
            tree = _parsed(env, source)
        except TemplateSyntaxError as exc:
            report_here(f"expression {syntax_message(exc, env.preprocess_coalesce(source))}", owner.id if owner else None)
            return
        except Exception:  # a limit or a parser corner: the run explains it
            return
        tid = owner.id if owner else None
        assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            base, key = node.node, node.attr if isinstance(node, nodes.Getattr) else (
                node.arg.value if isinstance(node.arg, nodes.Const) else None)
            if not isinstance(base, nodes.Name) or not isinstance(key, str) or base.name in assigned:
                continue
            if base.name == "inputs" and key not in inputs:
                hint = did_you_mean(key, inputs)
                report_here(f"`inputs.{key}`: the flow declares no input `{key}`"
                       + (f" (inputs: {', '.join(sorted(inputs))})" if inputs and not hint else ""), tid, hint)
            elif base.name == "vars" and variables is not None and key not in variables:
                report_here(f"`vars.{key}`: the flow declares no variable `{key}`", tid, did_you_mean(key, variables))
            elif base.name == "outputs" and check_outputs:
                target = tasks.get(key)
                if target is None:
                    report_here(f"`outputs.{key}`: the flow has no task `{key}`", tid, did_you_mean(key, list(tasks)))
                elif owner is not None and target.order > owner.order and owner.id not in target.ancestors \
                        and not (owner.dag and owner.dag == target.dag):
                    report_here(f"`outputs.{key}`: task `{key}` runs after `{owner.id}`, so it has no outputs yet",
                           tid)
        for call in tree.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name not in functions | assigned:
                report_here(f"unknown function `{call.node.name}()`", tid,
                       did_you_mean(call.node.name, sorted(functions)))
        for flt in tree.find_all(nodes.Filter):
            if flt.name not in env.filters:
                report_here(f"unknown filter `{flt.name}`", tid, did_you_mean(flt.name, sorted(env.filters)))
        for test in tree.find_all(nodes.Test):
            if test.name not in env.tests:
                report_here(f"unknown test `is {test.name}`", tid, did_you_mean(test.name, sorted(env.tests)))

    def walk_task(item: Any, path: Path) -> None:
        if isinstance(item, list):
            for i, sub in enumerate(item):
                walk_task(sub, (*path, i))
            return
        if not isinstance(item, dict):
            return
        owner = tasks.get(item["id"]) if _is_task(item) else None
        if owner is not None:
            runner = item.get("taskRunner")
            if isinstance(runner, dict) and isinstance(runner.get("type"), str) and "{{" not in runner["type"] \
                    and registry.get("runner", runner["type"]) is None:
                hint = registry.suggest("runner", runner["type"])
                report((*path, "taskRunner", "type"), f"unknown task runner type `{runner['type']}`", owner.id,
                       f"did you mean {hint}?" if hint else None)
            if known_flows is not None and str(item["type"]).rsplit(".", 1)[-1] in ("Subflow", "Flow") \
                    and isinstance(item.get("namespace"), str) and isinstance(item.get("flowId"), str) \
                    and "{{" not in item["namespace"] + item["flowId"] \
                    and (item["namespace"], item["flowId"]) not in known_flows:
                report((*path, "flowId"), f"subflow `{item['namespace']}.{item['flowId']}` is neither deployed nor "
                       "among the flows validated with this one", owner.id, severity="warning")
        for key, value in item.items():
            if isinstance(value, (dict, list)) and _holds_tasks(value):
                walk_task(value, (*path, key))
            else:
                for sub_path, source in _strings(value, (*path, key)):
                    check(sub_path, source, owner if owner is not None else _enclosing(tasks, path), True)

    for block in TASK_BLOCKS:
        walk_task(data.get(block), (block,))
    for i, output in enumerate(data.get("outputs") or []):
        for sub_path, source in _strings(output, ("outputs", i)):
            check(sub_path, source, None, True)
    for i, trigger in enumerate(data.get("triggers") or []):  # `outputs` there are the upstream flow's
        for sub_path, source in _strings(trigger, ("triggers", i)):
            check(sub_path, source, None, False)


def _task_items(data: Any) -> Iterator[dict[str, Any]]:
    """Every task mapping in the raw flow."""
    if isinstance(data, list):
        for item in data:
            yield from _task_items(item)
    elif isinstance(data, dict):
        if _is_task(data):
            yield data
        for value in data.values():
            if isinstance(value, (dict, list)):
                yield from _task_items(value)


def _is_task(value: Any) -> bool:
    """A task mapping: an `id` and a dotted `type` (input definitions have types like STRING)."""
    return isinstance(value, dict) and isinstance(value.get("id"), str) and isinstance(value.get("type"), str) \
        and "." in value["type"]


def _holds_tasks(value: Any) -> bool:
    """A list (or map of lists) holding tasks, or a Dag node's `task`: walked as tasks, not as a property."""
    if isinstance(value, dict):
        return _is_task(value) or any(isinstance(v, list) and _holds_tasks(v) for v in value.values())
    return any(_is_task(v) or (isinstance(v, dict) and _is_task(v.get("task"))) for v in value)


def _enclosing(tasks: dict[str, _Task], path: Path) -> _Task | None:
    best = None
    for task in tasks.values():
        if path[:len(task.path)] == task.path and (best is None or len(task.path) > len(best.path)):
            best = task
    return best
