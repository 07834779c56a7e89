"""Loading flows: the model, child tasks, plugin defaults, and every validation error by its text."""

import textwrap
from pathlib import Path

import pytest

from tiercel.flow import Flow, FlowError, FlowValidationError, load_flow_file

HEAD = "id: hello\nnamespace: company.team\n"


def flow(body: str) -> str:
    return HEAD + textwrap.dedent(body)


def one(errors, text):
    found = errors(text)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


VALID = (Path(__file__).parent / "flows" / "valid.yaml").read_text()


def test_valid_flow_builds_component_instances(load, registry):
    f = load(VALID)
    assert isinstance(f, Flow)
    assert f.labels == {"env": "dev", "n": "1"}
    assert f.source == VALID and f.path == "flow.yaml"
    assert type(f.tasks[0]) is registry.get("task", "test.Log").cls
    assert f.tasks[0].type == "test.Log"
    assert f.task("yes_").type == "test.Log"  # written with an alias, canonical type kept
    assert f.finally_[0].id == "at_end"
    assert f.triggers[0].cron == "0 2 * * *"
    assert f.concurrency.limit == 1 and f.retry.maxAttempt == 3
    assert "source" not in f.model_dump() and "path" not in f.model_dump()


def test_walk_yields_every_task_with_parent_and_block(load):
    f = load(VALID)
    seen = {t.id: (p.id if p else None, block) for t, p, block in f.walk()}
    assert seen == {
        "say": (None, "tasks"), "seq": (None, "tasks"), "nap": ("seq", "tasks"), "branch": ("seq", "tasks"),
        "yes_": ("branch", "then"), "no_": ("branch", "else"), "oops": ("seq", "errors"),
        "sw": (None, "tasks"), "c1": ("sw", "cases.world"), "c2": ("sw", "cases.1"), "c3": ("sw", "defaults"),
        "wrap": (None, "tasks"), "inner": ("wrap", "task"), "dag": (None, "tasks"), "d1": ("dag", "tasks"),
        "d2": ("dag", "tasks"), "on_error": (None, "errors"), "at_end": (None, "finally"),
        "after": (None, "afterExecution"),
    }


def test_task_lookup(load):
    f = load(VALID)
    assert f.task("inner").message == "i"
    with pytest.raises(KeyError, match="no task `ghost`"):
        f.task("ghost")


def test_expressions_accepted_where_typed_values_expected(load):
    f = load(flow("""
        tasks:
          - {id: a, type: test.Nap, duration: "{{ inputs.d }}", count: "{{ 1 + 1 }}"}
    """))
    assert f.tasks[0].count == "{{ 1 + 1 }}"


def test_labels_as_map(load):
    f = load(flow("""
        labels: {env: dev, on: true}
        tasks: [{id: a, type: test.Log, message: x}]
    """))
    assert f.labels == {"env": "dev", "on": "true"}


def test_plugin_defaults_fill_missing_properties(load):
    f = load(flow("""
        pluginDefaults:
          - type: test.Nap
            values: {duration: PT5S, color: blue, options: {a: 1, b: 2}}
          - type: test
            values: {description: from prefix}
          - type: io.test
            values: {level: WARN}
        tasks:
          - {id: a, type: test.Nap, color: red, options: {a: 9}}
          - {id: b, type: io.test.log.Log, message: x}
    """))
    a, b = f.tasks
    assert (a.duration.total_seconds(), a.color, a.options) == (5, "red", {"a": 9, "b": 2})
    assert a.description == "from prefix"
    assert b.level == "WARN" and b.description == "from prefix"


def test_forced_plugin_defaults_override(load):
    f = load(flow("""
        taskDefaults:
          - {type: test.Nap, forced: true, values: {color: green}}
          - {type: test.Nap, values: {color: blue, duration: PT1S}}
        tasks:
          - {id: a, type: test.Nap, color: red}
    """))
    assert f.tasks[0].color == "green"
    assert f.pluginDefaults[0].type == "test.Nap"


def test_load_flow_file(tmp_path, registry):
    path = tmp_path / "f.yaml"
    path.write_text(VALID)
    assert load_flow_file(path, registry=registry).path == str(path)
    with pytest.raises(FlowValidationError, match="cannot read file"):
        load_flow_file(tmp_path / "missing.yaml", registry=registry)


# --- errors ---------------------------------------------------------------------------

def test_unknown_type_suggests_closest(errors):
    e = one(errors, flow("""
        tasks:
          - id: say
            type: test.Logg
            message: hi
    """))
    assert (e.line, e.column, e.task_id, e.property) == (6, 11, "say", "tasks[0].type")
    assert "unknown task type `test.Logg`" in e.message
    assert e.suggestion == "did you mean test.Log?"
    assert "did you mean test.Log?" in str(e)


def test_unknown_property_named_with_suggestion(errors):
    e = one(errors, flow("""
        tasks:
          - id: nap
            type: test.Nap
            duration: PT1S
            colour: red
    """))
    assert str(e) == "flow.yaml:8:5: task `nap`: unknown property `colour` (did you mean `color`?)"
    assert e.property == "tasks[0].colour"


def test_unknown_property_nested(errors):
    e = one(errors, flow("""
        tasks:
          - id: nap
            type: test.Nap
            duration: PT1S
            retry: {type: constant, maxAtempt: 2}
    """))
    assert e.message == "unknown property `maxAtempt` in `retry`"
    assert e.suggestion == "did you mean `maxAttempt`?"
    assert e.property == "tasks[0].retry.maxAtempt"


def test_missing_required_property(errors):
    e = one(errors, flow("""
        tasks:
          - id: l
            type: test.Log
    """))
    assert (e.line, e.task_id, e.message) == (5, "l", "missing required property `message`")


def test_wrong_type(errors):
    e = one(errors, flow("""
        tasks:
          - id: n
            type: test.Nap
            duration: PT1S
            count: abc
    """))
    assert (e.line, e.column) == (8, 12)
    assert e.message == "`count`: expected an integer, got 'abc'"


def test_wrong_type_nested_names_full_property(errors):
    e = one(errors, flow("""
        tasks:
          - id: n
            type: test.Nap
            duration: PT1S
            retry: {type: constant, maxAttempt: x}
    """))
    assert e.property == "tasks[0].retry.maxAttempt"
    assert e.message == "`retry.maxAttempt`: expected an integer, got 'x'"


def test_wrong_duration_and_union_types(errors):
    found = errors(flow("""
        tasks:
          - id: n
            type: test.Nap
            duration: soon
            runIf: [1]
    """))
    assert [e.message for e in found] == [
        "`duration`: expected an ISO-8601 duration such as PT30S, got 'soon'",
        "`runIf`: expected a string or a boolean, got a list",
    ]


def test_literal_choice(errors):
    e = one(errors, flow("""
        tasks: [{id: l, type: test.Log, message: x, level: LOUD}]
    """))
    assert e.message == "`level`: expected one of `DEBUG`, `INFO`, `WARN` or `ERROR`, got 'LOUD'"


def test_yaml_syntax_error_has_its_line(errors):
    e = one(errors, flow("""
        tasks:
          - id: a
            type: test.Log
            message: [1
    """))
    assert e.message.startswith("invalid YAML: did not find expected ',' or ']'")
    assert "started at line 7" in e.message
    assert e.line == 8


def test_yaml_duplicate_key(errors):
    e = one(errors, HEAD + "id: again\ntasks: []\n")
    assert e.message == "duplicate key `id` (first at line 1)" and e.line == 3


@pytest.mark.parametrize("text, message", [
    ("", "empty document: a flow needs at least `id`, `namespace` and `tasks`"),
    ("- a\n- b\n", "a flow must be a YAML mapping with `id`, `namespace` and `tasks`, got a list"),
    ("a: !!python/object:os.system x\n", "invalid YAML: could not determine a constructor"),
    ("a: &x [*x]\n", "recursive YAML alias: a value cannot contain itself"),
])
def test_not_a_flow(errors, text, message):
    assert one(errors, text).message.startswith(message)


def test_duplicate_task_ids_nested_name_both_locations(errors):
    e = one(errors, flow("""
        tasks:
          - {id: one, type: test.Log, message: x}
          - id: seq
            type: test.Sequential
            tasks:
              - id: one
                type: test.Log
                message: dup
    """))
    assert e.task_id == "one" and e.line == 9 and e.property == "tasks[1].tasks[0].id"
    assert e.message == ("duplicate task id `one`: task ids must be unique in the flow, nested ones included "
                         "(used at lines 5 and 9)")


def test_duplicate_task_ids_across_blocks(errors):
    e = one(errors, flow("""
        tasks: [{id: a, type: test.Log, message: x}]
        finally: [{id: a, type: test.Log, message: y}]
    """))
    assert "duplicate task id `a`" in e.message and "lines 4 and 5" in e.message


def test_invalid_task_id(errors):
    e = one(errors, flow("""
        tasks: [{id: "my task", type: test.Log, message: x}]
    """))
    assert e.message.startswith("invalid task id `my task`")


def test_invalid_flow_id_and_namespace(errors):
    found = errors("id: 'bad id'\nnamespace: Company.Team\ntasks: [{id: a, type: test.Log, message: x}]\n")
    assert [e.property for e in found] == ["id", "namespace"]
    assert found[0].message.startswith("invalid flow id `bad id`: must match ^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
    assert found[1].message.startswith("invalid namespace `Company.Team`")
    assert found[1].suggestion == "did you mean `company.team`?"


def test_flow_id_too_long(errors):
    e = one(errors, f"id: {'a' * 101}\nnamespace: n\ntasks: [{{id: a, type: test.Log, message: x}}]\n")
    assert e.property == "id" and "at most 100 characters" in e.message


def test_missing_flow_properties(errors):
    found = errors("id: x\n")
    assert {e.message for e in found} == {"missing required property `namespace`", "missing required property `tasks`"}


def test_empty_tasks(errors):
    assert one(errors, HEAD + "tasks: []\n").message == "`tasks` is empty: a flow needs at least one task"


def test_unknown_flow_property(errors):
    e = one(errors, flow("""
        tasks: [{id: a, type: test.Log, message: x}]
        trigers: []
    """))
    assert e.message == "unknown property `trigers`" and e.suggestion == "did you mean `triggers`?"


@pytest.mark.parametrize("block, what", [("inputs", "input"), ("outputs", "output"), ("triggers", "trigger")])
def test_duplicate_ids(errors, block, what):
    item = {"inputs": "{id: x, type: STRING}", "outputs": "{id: x, value: 1}",
            "triggers": "{id: x, type: test.Tick, cron: '* * * * *'}"}[block]
    e = one(errors, flow(f"""
        tasks: [{{id: a, type: test.Log, message: x}}]
        {block}:
          - {item}
          - {item}
    """))
    assert e.message == f"duplicate {what} id `x`: also used at line 6"
    assert e.line == 7


def test_dag_missing_dependency(errors):
    e = one(errors, flow("""
        tasks:
          - id: d
            type: test.Dag
            tasks:
              - task: {id: a, type: test.Log, message: x}
              - task: {id: b, type: test.Log, message: x}
                dependsOn: [aa]
    """))
    assert e.task_id == "b" and e.property == "tasks[0].tasks[1].dependsOn[0]"
    assert e.message == "dependsOn `aa`: no task `aa` in this dag" and e.suggestion == "did you mean `a`?"


def test_dag_cycle(errors):
    e = one(errors, flow("""
        tasks:
          - id: d
            type: test.Dag
            tasks:
              - task: {id: a, type: test.Log, message: x}
                dependsOn: [c]
              - task: {id: b, type: test.Log, message: x}
                dependsOn: [a]
              - task: {id: c, type: test.Log, message: x}
                dependsOn: [b]
    """))
    assert e.message == "dependency cycle: a -> c -> b -> a"


def test_subflow_calling_itself(errors):
    e = one(errors, flow("""
        tasks:
          - {id: again, type: test.Subflow, namespace: company.team, flowId: hello}
          - {id: other, type: test.Subflow, namespace: company.team, flowId: other}
    """))
    assert e.task_id == "again"
    assert e.message.startswith("subflow calls its own flow `company.team.hello`")


def test_child_error_has_full_path_and_parent_still_checked(errors):
    found = errors(flow("""
        tasks:
          - id: seq
            type: test.Sequential
            colour: red
            tasks:
              - id: deep
                type: test.If
                condition: x
                then:
                  - {id: leaf, type: test.Nap}
    """))
    assert [(e.task_id, e.property) for e in found] == [("seq", "tasks[0].colour"), ("leaf", "tasks[0].tasks[0].then[0]")]
    assert found[1].message == "missing required property `duration`"


def test_task_of_wrong_kind(errors):
    e = one(errors, flow("""
        tasks: [{id: a, type: test.Tick, cron: x}]
    """))
    assert e.message == "`test.Tick` is a trigger, not a task"


def test_trigger_errors_name_the_trigger(errors):
    found = errors(flow("""
        tasks: [{id: a, type: test.Log, message: x}]
        triggers:
          - {id: t, type: test.Tick}
          - {id: u, type: test.Tik, cron: x}
    """))
    assert [str(e).split(": ", 1)[1] for e in found] == [
        "trigger `t`: missing required property `cron`",
        "trigger `u`: unknown trigger type `test.Tik` (did you mean test.Tick?)",
    ]
    assert found[0].task_id is None


def test_non_mapping_task(errors):
    found = errors(HEAD + "tasks: [1, null, {id: q}]\n")
    assert [e.message for e in found] == [
        "expected a task: a mapping with `id` and `type`, got 1",
        "expected a task: a mapping with `id` and `type`, got null",
        "missing required property `type`",
    ]


def test_reserved_label(errors):
    e = one(errors, flow("""
        labels: {system.correlationId: x}
        tasks: [{id: a, type: test.Log, message: x}]
    """))
    assert "the `system.` prefix is reserved" in e.message


def test_concurrency_limit(errors):
    found = errors(flow("""
        tasks: [{id: a, type: test.Log, message: x}]
        concurrency: {limit: 0, behavior: WAIT}
    """))
    assert [e.message for e in found] == ["`concurrency.limit`: must be greater than 0",
                                          "`concurrency.behavior`: expected one of `QUEUE`, `CANCEL` or `FAIL`, got 'WAIT'"]


def test_several_errors_in_source_order_and_exception_text(load):
    with pytest.raises(FlowValidationError) as info:
        load(flow("""
            tasks:
              - {id: a, type: test.Nope}
              - {id: b, type: test.Log}
        """))
    errs = info.value.errors
    assert [e.line for e in errs] == [5, 6]
    assert str(info.value) == "\n".join(str(e) for e in errs)
    assert all(isinstance(e, FlowError) for e in errs)


def test_error_to_json():
    e = FlowError("a.yaml", 3, 5, "t", "tasks[0].x", "unknown property `x`", "did you mean `y`?")
    assert e.to_json() == {"file": "a.yaml", "line": 3, "column": 5, "task_id": "t", "property": "tasks[0].x",
                           "message": "unknown property `x`", "suggestion": "did you mean `y`?", "source": None,
                           "severity": "error",
                           "text": "a.yaml:3:5: task `t`: unknown property `x` (did you mean `y`?)"}


def test_validate_paths_files_and_folders(tmp_path, registry):
    from tiercel.flow import validate_paths

    (tmp_path / "sub").mkdir()
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "sub" / "bad.yml").write_text(HEAD + "tasks: [{id: a, type: test.Logg}]\n")
    (tmp_path / "notes.txt").write_text("not a flow")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "ci.yml").write_text("on: push\n")
    found = validate_paths([tmp_path], registry=registry)
    assert [e.file for e in found] == [str(tmp_path / "sub" / "bad.yml")]
    assert validate_paths([tmp_path / "good.yaml"], registry=registry) == []
    assert validate_paths([tmp_path / "nope"], registry=registry)[0].message == "no such file or folder"


def test_unknown_type_of_a_missing_plugin(errors):
    e = one(errors, flow("""
        tasks: [{id: a, type: kafka.Produce}]
    """))
    assert e.suggestion == "is the tiercel-kafka plugin installed? see `tiercel plugins list`"


def test_unknown_type_of_a_plugin_that_failed_to_load(make_registry_with_broken_plugin):
    from tiercel.flow import check_flow

    found = check_flow("id: a\nnamespace: b\ntasks: [{id: a, type: brokenplug.Thing}]\n",
                       registry=make_registry_with_broken_plugin)
    assert found[0].suggestion.startswith("plugin tiercel-brokenplug is installed but did not load: cannot import")


def test_input_id_pattern(errors):
    e = one(errors, flow("""
        inputs: [{id: "my input", type: STRING}]
        tasks: [{id: a, type: test.Log, message: x}]
    """))
    assert e.message == "input `my input`: `id`: 'my input' does not match ^[a-zA-Z0-9][.a-zA-Z0-9_-]*$"


def test_empty_child_list_and_single_task_instead_of_a_list(errors):
    found = errors(flow("""
        tasks:
          - id: s
            type: test.Sequential
            tasks: []
          - id: i
            type: test.If
            condition: x
            then: {id: q, type: test.Log, message: m}
    """))
    assert [(e.message, e.suggestion) for e in found] == [
        ("`tasks` needs at least 1 item, got none", None),
        ("`then`: expected a list, got a mapping", "write it as a list: start the item with `- `"),
    ]


def test_plugin_defaults_by_prefix_apply_only_known_properties(load, errors):
    f = load(flow("""
        pluginDefaults:
          - {type: test, values: {color: blue, message: default message}}
        tasks:
          - {id: a, type: test.Nap, duration: PT1S}
          - {id: b, type: test.Log}
    """))
    assert f.tasks[0].color == "blue" and f.tasks[1].message == "default message"
    e = one(errors, flow("""
        pluginDefaults:
          - {type: test.Nap, values: {colour: blue}}
        tasks:
          - {id: a, type: test.Nap, duration: PT1S}
    """))
    assert e.message == "unknown property `colour` (set by pluginDefaults)" and e.task_id == "a"


def test_property_of_a_nested_model_written_one_level_up(errors):
    e = one(errors, flow("""
        tasks: [{id: a, type: test.Nap, duration: PT1S, maxAttempt: 3}]
    """))
    assert e.message == "unknown property `maxAttempt`" and e.suggestion == "did you mean `retry.maxAttempt`?"


def test_to_dict_keeps_types_nested_fields_and_aliases(load):
    import json

    f = load(VALID)
    data = f.to_dict()
    json.dumps(data)
    assert data["tasks"][1]["type"] == "test.Sequential"
    assert data["tasks"][1]["tasks"][1]["else"] == [{"type": "test.Log", "id": "no_", "message": "y"}]
    assert data["tasks"][4]["tasks"][1] == {"task": {"type": "test.Log", "id": "d2", "message": "x"}, "dependsOn": ["d1"]}
    assert data["finally"][0]["id"] == "at_end" and data["labels"] == {"env": "dev", "n": "1"}
    assert data["inputs"][0] == {"id": "name", "type": "STRING", "defaults": "world"}
    assert data["retry"]["interval"] == "PT1S"
    assert load(json.dumps(data)).to_dict() == data  # JSON is YAML: the dump loads back unchanged


def test_an_unquoted_yaml_boolean_where_text_is_expected_says_to_quote_it():
    from tiercel.flow import FlowValidationError, load_flow

    with pytest.raises(FlowValidationError) as info:
        load_flow("id: t\nnamespace: a\ntasks:\n  - {id: off, type: core.Log, message: x}\n")
    assert "got false" in str(info.value) and "quote the value" in str(info.value)


@pytest.mark.parametrize("text, line, column, message, hint", [
    ("id: x\nnamespace: a.b\ntasks:\n  - id: t\n\ttype: core.Log\n", 5, 1,
     "a tab character in the indentation: YAML indents with spaces only", "replace the tab with spaces"),
    ("id: x\nnamespace: a.b\ntasks:\n  - id: t\n    type: core.Log\n   message: hi\n", 6, 4,
     "bad indentation: this line does not line up with the lines above it, inside the block that starts at line 4",
     "indent every key of one mapping"),
    ("id: x\nnamespace: a.b\ntasks:\n  - id: t\n    type: core.Log\n    message: \"hi\n", 6, 14,
     "a quoted string is never closed", "add the closing quote"),
    ("id: x\nnamespace: a.b\ntasks:\n  - id: t\n    type: core.Log\n    message: a: b\n", 6, 15,
     "a `: ` inside an unquoted value reads as a second key on this line", "quote the whole value"),
])
def test_yaml_syntax_errors_explained_with_the_source_line_and_a_caret(errors, text, line, column, message, hint):
    e = one(errors, text)
    assert (e.line, e.column, e.message) == (line, column, message)
    assert e.suggestion.startswith(hint)
    shown = str(e).splitlines()
    assert shown[1].endswith(text.splitlines()[line - 1].expandtabs(1))
    assert shown[2].index("^") == shown[1].index("| ") + 2 + column - 1
