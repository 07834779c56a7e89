"""The core components as models: names, Kestra aliases and properties, docs, examples, validation."""

from __future__ import annotations

import warnings
from datetime import UTC, timedelta

import pytest
from pydantic import ValidationError

from tiercel.api import FlowableTask, Task
from tiercel.core import flowable, tasks, triggers
from tiercel.flow import FlowValidationError, iter_children, load_flow
from tiercel.plugins import load_registry

REGISTRY = load_registry(eps=[])  # the core plugin alone, whatever else is installed
COMPONENTS = REGISTRY.components()
IDS = [c.type for c in COMPONENTS]

EXPECTED = {
    "task": {
        "core.Log": ["io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log",
                     "io.kestra.plugin.core.debug.Echo", "io.kestra.core.tasks.debugs.Echo"],
        "core.Return": ["io.kestra.plugin.core.debug.Return", "io.kestra.core.tasks.debugs.Return"],
        "core.OutputValues": ["io.kestra.plugin.core.output.OutputValues", "io.kestra.core.tasks.outputs.OutputValues"],
        "core.Sleep": ["io.kestra.plugin.core.flow.Sleep"],
        "core.Fail": ["io.kestra.plugin.core.execution.Fail", "io.kestra.core.tasks.executions.Fail"],
        "core.Labels": ["io.kestra.plugin.core.execution.Labels", "io.kestra.core.tasks.executions.Labels"],
        "core.Assert": ["io.kestra.plugin.core.execution.Assert"],
        "core.Loop": ["io.kestra.plugin.core.flow.Loop"],
        "core.trigger.Toggle": ["io.kestra.plugin.core.trigger.Toggle"],
        "core.Exit": ["io.kestra.plugin.core.execution.Exit"],
        "core.SetVariables": ["io.kestra.plugin.core.execution.SetVariables"],
        "core.log.Fetch": ["io.kestra.plugin.core.log.Fetch", "io.kestra.core.tasks.log.Fetch"],
        "core.log.PurgeLogs": ["io.kestra.plugin.core.log.PurgeLogs"],
        "core.execution.Count": ["io.kestra.plugin.core.execution.Count", "io.kestra.plugin.core.execution.Counts",
                                 "io.kestra.core.tasks.executions.Counts"],
        "core.state.Get": ["io.kestra.plugin.core.state.Get", "io.kestra.core.tasks.states.Get"],
        "core.state.Set": ["io.kestra.plugin.core.state.Set", "io.kestra.core.tasks.states.Set"],
        "core.state.Delete": ["io.kestra.plugin.core.state.Delete", "io.kestra.core.tasks.states.Delete"],
        "core.UnsetVariables": ["io.kestra.plugin.core.execution.UnsetVariables"],
        "core.templating.TemplatedTask": ["io.kestra.plugin.core.templating.TemplatedTask"],
        **{f"core.storage.{name}": [f"io.kestra.plugin.core.storage.{name}"]
           for name in ("Write", "Concat", "Split", "Size", "Delete", "Reverse", "FilterItems", "DeduplicateItems",
                        "PurgeCurrentExecutionFiles", "LocalFiles")},
        "core.Resume": ["io.kestra.plugin.core.execution.Resume"],
        "core.Pause": ["io.kestra.plugin.core.flow.Pause", "io.kestra.core.tasks.flows.Pause"],
        "core.Sequential": ["io.kestra.plugin.core.flow.Sequential", "io.kestra.core.tasks.flows.Sequential"],
        "core.Parallel": ["io.kestra.plugin.core.flow.Parallel", "io.kestra.core.tasks.flows.Parallel"],
        "core.If": ["io.kestra.plugin.core.flow.If", "io.kestra.core.tasks.flows.If"],
        "core.Switch": ["io.kestra.plugin.core.flow.Switch", "io.kestra.core.tasks.flows.Switch"],
        "core.ForEach": ["io.kestra.plugin.core.flow.ForEach", "io.kestra.plugin.core.flow.EachSequential",
                         "io.kestra.core.tasks.flows.EachSequential"],
        "core.EachParallel": ["io.kestra.plugin.core.flow.EachParallel", "io.kestra.core.tasks.flows.EachParallel"],
        "core.Subflow": ["io.kestra.plugin.core.flow.Subflow", "io.kestra.core.tasks.flows.Subflow",
                         "io.kestra.plugin.core.flow.Flow", "io.kestra.core.tasks.flows.Flow"],
        "core.AllowFailure": ["io.kestra.plugin.core.flow.AllowFailure", "io.kestra.core.tasks.flows.AllowFailure"],
        "core.Dag": ["io.kestra.plugin.core.flow.Dag", "io.kestra.core.tasks.flows.Dag"],
        "core.WaitFor": ["io.kestra.plugin.core.flow.WaitFor"],
        "core.WorkingDirectory": ["io.kestra.plugin.core.flow.WorkingDirectory", "io.kestra.core.tasks.flows.WorkingDirectory"],
        "core.ForEachItem": ["io.kestra.plugin.core.flow.ForEachItem", "io.kestra.core.tasks.flows.ForEachItem"],
        **{f"core.kv.{name}": [f"io.kestra.plugin.core.kv.{name}"] for name in ("Set", "Get", "GetKeys", "Delete", "PurgeKV")},
        **{f"core.namespace.{name}": [f"io.kestra.plugin.core.namespace.{name}"]
           for name in ("UploadFiles", "DownloadFiles", "DeleteFiles")},
    },
    "trigger": {
        "core.Schedule": ["io.kestra.plugin.core.trigger.Schedule", "io.kestra.core.models.triggers.types.Schedule"],
        "core.Flow": ["io.kestra.plugin.core.trigger.Flow", "io.kestra.core.models.triggers.types.Flow"],
        "core.Webhook": ["io.kestra.plugin.core.trigger.Webhook", "io.kestra.core.models.triggers.types.Webhook"],
    },
    "runner": {"core.Process": ["io.kestra.plugin.core.runner.Process", "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner"]},
    "storage": {"core.Local": []},
    "secret": {"core.EnvSecrets": ["env"], "core.FileSecrets": ["file"], "core.StoredSecrets": ["store"]},
}

#: Kestra's property names per type (beyond the common ones).
KESTRA_PROPERTIES = {
    "core.Log": {"message", "level"},
    "core.Return": {"format"},
    "core.OutputValues": {"values"},
    "core.Sleep": {"duration"},
    "core.Fail": {"condition", "errorMessage"},
    "core.Pause": {"delay", "timeout", "onResume", "tasks"},
    "core.Sequential": {"tasks", "errors", "finally"},
    "core.Parallel": {"tasks", "concurrent", "errors", "finally"},
    "core.If": {"condition", "then", "else", "errors", "finally"},
    "core.Switch": {"value", "cases", "defaults", "errors", "finally"},
    "core.ForEach": {"values", "concurrencyLimit", "tasks", "errors", "finally"},
    "core.Subflow": {"namespace", "flowId", "revision", "inputs", "labels", "wait", "transmitFailed", "inheritLabels"},
    "core.AllowFailure": {"tasks", "errors", "finally"},
    "core.Dag": {"tasks", "concurrent", "errors", "finally"},
    "core.WaitFor": {"condition", "tasks", "checkFrequency", "failOnMaxReached"},
    "core.WorkingDirectory": {"tasks", "inputFiles", "outputFiles", "namespaceFiles"},
    "core.Labels": {"labels"},
    "core.ForEachItem": {"items", "batch", "namespace", "flowId", "revision", "inputs", "labels", "wait",
                         "transmitFailed", "inheritLabels"},
    "core.Resume": {"executionId", "inputs"},
    "core.Schedule": {"cron", "withSeconds", "timezone", "inputs", "lateMaximumDelay", "recoverMissedSchedules", "conditions"},
    "core.Flow": {"states", "conditions", "preconditions", "inputs"},
    "core.Webhook": {"key", "wait"},
    "core.Local": {"basePath"},
    "core.kv.Set": {"key", "value", "kvType", "namespace", "overwrite", "ttl"},
    "core.kv.Get": {"key", "namespace", "errorOnMissing"},
    "core.kv.GetKeys": {"prefix", "namespace"},
    "core.kv.Delete": {"key", "namespace", "errorOnMissing"},
    "core.kv.PurgeKV": {"namespaces", "keyPattern", "expiredOnly"},
    "core.namespace.UploadFiles": {"files", "namespace", "destination", "conflict"},
    "core.namespace.DownloadFiles": {"files", "namespace"},
    "core.namespace.DeleteFiles": {"files", "namespace"},
}


def yaml_names(cls: type) -> set[str]:
    return {info.alias or name for name, info in cls.model_fields.items()}


def test_the_core_plugin_loads_cleanly_with_every_type():
    plugin = REGISTRY.plugins["tiercel"]
    assert plugin.errors == [] and plugin.skipped is None
    for kind, types in EXPECTED.items():
        assert REGISTRY.types(kind) == sorted(types)


@pytest.mark.parametrize("kind,name,alias", [(k, n, a) for k, ts in EXPECTED.items() for n, aliases in ts.items() for a in aliases])
def test_kestra_names_resolve_to_the_core_type(kind, name, alias):
    assert REGISTRY.get(kind, alias).type == name


@pytest.mark.parametrize("name", sorted(KESTRA_PROPERTIES))
def test_properties_carry_kestra_names(name):
    assert KESTRA_PROPERTIES[name] <= yaml_names(REGISTRY.find(name).cls)


@pytest.mark.parametrize("info", COMPONENTS, ids=IDS)
def test_component_is_documented(info):
    cls = info.cls
    assert cls.__doc__ and cls.__doc__.strip(), f"{info.type} has no docstring"
    undocumented = [name for name, f in cls.model_fields.items() if not f.description]
    assert not undocumented, f"{info.type}: fields without a description: {undocumented}"
    assert cls.examples, f"{info.type} has no example"
    for model in _nested_models(cls):
        assert model.__doc__, f"{model.__name__} has no docstring"
        assert all(f.description for f in model.model_fields.values()), f"{model.__name__} has undocumented fields"
    cls.model_json_schema()  # the schema builds


def _nested_models(cls):
    from pydantic import BaseModel

    seen, todo = set(), [cls]
    while todo:
        model = todo.pop()
        for f in model.model_fields.values():
            for arg in _args(f.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in seen and not issubclass(arg, Task):
                    seen.add(arg)
                    todo.append(arg)
    return seen


def _args(annotation):
    from typing import get_args

    yield annotation
    for arg in get_args(annotation):
        yield from _args(arg)


EXAMPLES = [(c, ex) for c in COMPONENTS for ex in c.cls.examples]
NEEDS_PLUGINS = ("scripts.",)


@pytest.mark.parametrize("info,example", EXAMPLES, ids=[f"{c.type}:{i}" for i, (c, _) in enumerate(EXAMPLES)])
def test_examples_are_valid_flows_using_their_type(info, example):
    if any(f"type: {p}" in example.flow for p in NEEDS_PLUGINS):
        full = load_registry()
        if not any(full.get("task", t) for t in ("scripts.Shell",)):
            pytest.skip("example uses scripts.Shell: install plugins/tiercel-scripts to validate it")
        flow = load_flow(example.flow, f"{info.type}.yaml", registry=full)
        assert not example.run
    else:
        flow = load_flow(example.flow, f"{info.type}.yaml", registry=REGISTRY)
    assert flow.id and flow.namespace
    used = {type(t) for t in _walk(flow.tasks)} | {type(t) for t in flow.triggers or []}
    if info.kind in ("task", "trigger"):
        assert info.cls in used, f"example `{example.title}` does not use {info.type}"


def _walk(items):
    for task in items:
        yield task
        for _, children in iter_children(task):
            yield from _walk(children)


def test_child_task_fields_are_static_and_never_rendered():
    for info in REGISTRY.components("task"):
        for name, f in info.cls.model_fields.items():
            if any(isinstance(a, type) and issubclass(a, (Task, flowable.DagTask)) for a in _args(f.annotation)):
                assert name in info.cls.static_fields, f"{info.type}.{name} holds tasks but is not static"
        if issubclass(info.cls, FlowableTask):
            assert info.cls.run is Task.run


def flow(tasks_yaml: str, registry=REGISTRY):
    return load_flow(f"id: t\nnamespace: company.team\ntasks:\n{tasks_yaml}", "t.yaml", registry=registry)


def errors_of(tasks_yaml: str) -> str:
    with pytest.raises(FlowValidationError) as exc:
        flow(tasks_yaml)
    return str(exc.value)


def test_kestra_flow_with_old_names_and_deprecated_properties():
    f = flow("""\
  - id: echo
    type: io.kestra.core.tasks.debugs.Echo
    format: "hi {{ flow.id }}"
  - id: loop
    type: io.kestra.core.tasks.flows.EachSequential
    value: '["a", "b"]'
    tasks:
      - id: inner
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
  - id: par
    type: io.kestra.plugin.core.flow.EachParallel
    value: [1, 2]
    concurrent: 3
    tasks:
      - id: inner2
        type: io.kestra.core.tasks.log.Log
        message: x
""")
    echo, loop, par = f.tasks
    assert isinstance(echo, tasks.Log) and echo.message == "hi {{ flow.id }}"
    assert type(loop) is flowable.ForEach and loop.values == '["a", "b"]' and loop.concurrencyLimit == 1
    assert isinstance(par, flowable.ForEach) and par.values == [1, 2] and par.concurrencyLimit == 3
    assert flowable.EachParallel(id="p", values=[1], tasks=[tasks.Log(id="l", message="m")]).concurrencyLimit == 0


def test_if_else_and_finally_use_yaml_keywords():
    f = flow("""\
  - id: branch
    type: core.If
    condition: "{{ 1 == 1 }}"
    then: [{id: a, type: core.Log, message: a}]
    else: [{id: b, type: core.Log, message: b}]
    finally: [{id: c, type: core.Log, message: c}]
""")
    branch = f.tasks[0]
    assert [t.id for t in branch.else_] == ["b"] and [t.id for t in branch.finally_] == ["c"]
    dumped = branch.model_dump(by_alias=True, exclude_none=True)
    assert "else" in dumped and "finally" in dumped
    assert {"else", "finally"} <= set(flowable.If.model_json_schema()["properties"])


def test_switch_needs_a_branch_and_compares_as_text():
    assert "needs `cases`, `defaults` or both" in errors_of("  - {id: s, type: core.Switch, value: x}\n")
    sw = flowable.Switch(id="s", value=3, cases={"3": [tasks.Log(id="l", message="m")]})
    assert sw.value == "3"
    f = flow("""\
  - id: s
    type: core.Switch
    value: "{{ 1 + 0 }}"
    cases:
      1: [{id: one, type: core.Log, message: one}]
      true: [{id: is_true, type: core.Log, message: "yes"}]
""")
    assert list(f.tasks[0].cases) == ["1", "true"]


def test_dag_rejects_unknown_dependencies_and_cycles():
    node = "      - task: {{id: {0}, type: core.Log, message: m}}\n        dependsOn: [{1}]\n"
    msg = errors_of("  - id: g\n    type: core.Dag\n    tasks:\n" + node.format("a", "b") + node.format("b", "c") + node.format("c", "a"))
    assert "dependency cycle: a -> b -> c -> a" in msg
    assert "nope" in errors_of("  - id: g\n    type: core.Dag\n    tasks:\n" + node.format("a", "nope"))
    with pytest.raises(ValidationError, match="task `a` depends on `nope`, which is not a task of this Dag"):
        flowable.Dag(id="g", tasks=[{"task": tasks.Log(id="a", message="m"), "dependsOn": ["nope"]}])


def test_find_cycle():
    assert flowable.find_cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) is None
    assert flowable.find_cycle({"a": ["a"]}) == ["a", "a"]


def test_foreach_item_batch_takes_one_strategy():
    with pytest.raises(ValidationError, match="set only one of rows, bytes and partitions"):
        flowable.Batch(rows=10, partitions=2)
    assert flowable.Batch().separator == "\n"


def test_labels_map_or_list_and_system_prefix_refused():
    assert flowable.Subflow(id="s", namespace="n", flowId="f", labels=[{"key": "a", "value": 1}]).labels[0].value == "1"
    assert tasks.Labels(id="l", labels={"team": "data"}).labels == {"team": "data"}
    with pytest.raises(ValidationError, match="`system.` prefix is reserved"):
        tasks.Labels(id="l", labels={"system.correlationId": "x"})


def test_waitfor_defaults_follow_kestra():
    w = flowable.WaitFor(id="w", condition="{{ true }}", tasks=[tasks.Log(id="l", message="m")])
    assert (w.checkFrequency.maxIterations, w.checkFrequency.maxDuration, w.checkFrequency.interval) == (100, timedelta(hours=1), timedelta(seconds=1))
    assert w.failOnMaxReached is False
    assert "condition" in flowable.WaitFor.static_fields  # rendered by the engine after each iteration only


def test_subflow_and_foreach_defaults():
    s = flowable.Subflow(id="s", namespace="n", flowId="f")
    assert (s.wait, s.transmitFailed, s.inheritLabels, s.revision) == (True, True, False, None)
    f = flowable.ForEach(id="f", values=[1], tasks=[tasks.Log(id="l", message="m")])
    assert f.concurrencyLimit == 1
    p = flowable.Parallel(id="p", tasks=[tasks.Log(id="l", message="m")])
    assert p.concurrent == 0
    assert "inputs" in flowable.ForEachItem.static_fields  # rendered per batch ({{ taskrun.items }})


def test_wrong_properties_are_named():
    msg = errors_of("  - {id: nap, type: core.Sleep, duration: PT1S, colour: red}\n")
    assert "colour" in msg
    msg = errors_of("  - {id: nap, type: core.Sleep, duration: soon}\n")
    assert "duration" in msg
    msg = errors_of("  - {id: nap, type: core.Sleep, duration: -PT1S}\n")
    assert "must not be negative" in msg
    msg = errors_of("  - {id: seq, type: core.Sequential, tasks: []}\n")
    assert "tasks" in msg


def test_expressions_are_accepted_at_deploy_time():
    f = flow("""\
  - id: nap
    type: core.Sleep
    duration: "{{ inputs.wait }}"
  - id: par
    type: core.Parallel
    concurrent: "{{ vars.n }}"
    tasks: [{id: x, type: core.Log, message: m}]
""")
    assert f.tasks[0].duration == "{{ inputs.wait }}"
    f = flow("""\
  - id: tag
    type: core.Labels
    labels: "{{ inputs.labels }}"
  - id: child
    type: core.Subflow
    namespace: company.team
    flowId: other
    labels: "{{ inputs.labels }}"
    wait: "{{ inputs.wait }}"
  - id: check
    type: core.Fail
    condition: "{{ inputs.bad }}"
  - id: hook_like
    type: core.ForEachItem
    items: "{{ inputs.file }}"
    batch: {rows: "{{ inputs.rows }}"}
    namespace: company.team
    flowId: other
""")
    assert f.tasks[0].labels == "{{ inputs.labels }}" and f.tasks[1].wait == "{{ inputs.wait }}"


def test_text_properties_take_rendered_native_values():
    assert tasks.Return(id="r", format=42).format == "42"
    assert tasks.Return(id="r", format=True).format == "true"
    assert tasks.Log(id="l", message=[1, "two"]).message == ["1", "two"]
    assert tasks.Fail(id="f", condition=False).condition == "false"


# --- triggers -------------------------------------------------------------------------

def trigger_errors(trigger_yaml: str) -> str:
    text = "id: t\nnamespace: company.team\ntasks:\n  - {id: l, type: core.Log, message: m}\ntriggers:\n" + trigger_yaml
    with pytest.raises(FlowValidationError) as exc:
        load_flow(text, "t.yaml", registry=REGISTRY)
    return str(exc.value)


@pytest.mark.parametrize("cron,seconds", [("0 2 * * *", False), ("*/5 9-17 * * MON-FRI", False), ("@hourly", False),
                                          ("@daily", False), ("*/30 * * * * *", True), ("0  0  1 * *", False)])
def test_schedule_accepts_valid_cron(cron, seconds):
    s = triggers.Schedule(id="s", cron=cron, withSeconds=seconds)
    assert s.cron == " ".join(cron.split())


@pytest.mark.parametrize("cron,seconds,message", [
    ("0 2 * *", False, "has 4 fields, expected 5"),
    ("*/30 * * * * *", False, "has 6 fields, expected 5"),
    ("0 2 * * *", True, "has 5 fields, expected 6"),
    ("61 * * * *", False, "is not a valid cron expression"),
    ("@often", False, "unknown cron nickname `@often`"),
])
def test_schedule_rejects_bad_cron_with_a_clear_message(cron, seconds, message):
    with pytest.raises(ValidationError, match=message):
        triggers.Schedule(id="s", cron=cron, withSeconds=seconds)


def test_schedule_errors_in_a_flow_name_the_trigger():
    msg = trigger_errors('  - {id: nightly, type: core.Schedule, cron: "0 25 * * *"}\n')
    assert "nightly" in msg and "not a valid cron expression" in msg
    msg = trigger_errors('  - {id: nightly, type: core.Schedule, cron: "0 2 * * *", timezone: Mars/Olympus}\n')
    assert "unknown time zone `Mars/Olympus`" in msg
    msg = trigger_errors('  - {id: nightly, type: core.Schedule, cron: "0 2 * * *", recoverMissedSchedules: SOME}\n')
    assert "recoverMissedSchedules" in msg


def test_schedule_dates_follow_the_time_zone():
    from datetime import datetime

    s = triggers.Schedule(id="s", cron="0 2 * * *", timezone="Europe/Paris")
    start = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    nxt = s.next_date(start)
    assert nxt.isoformat() == "2026-01-11T02:00:00+01:00"
    assert s.previous_date(start).isoformat() == "2026-01-10T02:00:00+01:00"
    fast = triggers.Schedule(id="s", cron="*/30 * * * * *", withSeconds=True, timezone="UTC")
    assert fast.next_date(start).isoformat() == "2026-01-10T12:00:30+00:00"
    with pytest.raises(ValueError, match="aware datetime"):
        s.next_date(datetime(2026, 1, 1))


def test_schedule_defaults():
    s = triggers.Schedule(id="s", cron="@daily")
    assert (s.withSeconds, s.timezone, s.recoverMissedSchedules, s.lateMaximumDelay) == (False, None, "ALL", None)


def test_flow_trigger_preconditions():
    t = triggers.Flow(id="f", states=["SUCCESS", "FAILED"], preconditions={
        "id": "both", "flows": [{"namespace": "a", "flowId": "x"}, {"namespace": "a", "flowId": "y", "states": ["SUCCESS"]}],
        "where": [{"id": "w", "filters": [{"field": "NAMESPACE", "type": "STARTS_WITH", "value": "a"}]}],
        "timeWindow": {"type": "SLIDING_WINDOW", "window": "PT1H"}})
    assert t.preconditions.timeWindow.window == timedelta(hours=1) and t.preconditions.resetOnSuccess
    assert "states" in trigger_errors("  - {id: f, type: core.Flow, states: [DONE]}\n")


def test_webhook_key():
    assert triggers.Webhook(id="w", key="4wjtkzwVGBM9yKnjm3yv8r").wait is False
    with pytest.warns(UserWarning, match="webhook key `abc` is short"):
        triggers.Webhook(id="w", key="abc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        triggers.Webhook(id="w", key="{{ secret('HOOK') }}")
    with pytest.raises(ValidationError, match="no `/`"):
        triggers.Webhook(id="w", key="a/b/c/d/e/f")
    assert "key" in trigger_errors("  - {id: w, type: core.Webhook}\n")


def test_pause_on_resume_inputs_are_checked_like_flow_inputs():
    p = flowable.Pause(id="p", onResume=[{"id": "reason", "type": "STRING", "defaults": "ok"}])
    assert p.onResume == [{"id": "reason", "type": "STRING", "defaults": "ok"}]
    msg = errors_of("  - id: p\n    type: core.Pause\n    onResume:\n      - {id: reason, type: STRNG}\n")
    assert "onResume" in msg and "STRNG" in msg


def test_pause_accepts_kestras_newer_pause_duration():
    assert flowable.Pause.model_validate({"id": "p", "pauseDuration": "PT5M"}).delay == timedelta(minutes=5)
