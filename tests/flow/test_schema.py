"""The flow JSON Schema: valid draft-07, dispatches on `type`, accepts expressions, reaches child tasks."""

from pathlib import Path

import jsonschema
import pytest
import yaml

from tiercel.flow.schema import flow_json_schema

VALID = (Path(__file__).parent / "flows" / "valid.yaml").read_text()



@pytest.fixture(scope="module")
def schema(registry):
    return flow_json_schema(registry)


@pytest.fixture(scope="module")
def validator(schema):
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def problems(validator, text):
    return [(list(e.absolute_path), e.message) for e in validator.iter_errors(yaml.safe_load(text))]


def test_schema_is_draft7_with_every_type(schema):
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert set(schema["definitions"]["task"]["properties"]["type"]["enum"]) >= {"test.Log", "io.test.log.Log", "test.Dag"}
    assert "test.Tick" in schema["definitions"]["trigger"]["properties"]["type"]["enum"]
    log = schema["definitions"]["test.Log"]
    assert log["description"] == "Write a message to the logs."
    assert log["properties"]["message"]["description"] == "What to log."
    assert log["additionalProperties"] is False and "type" in log["required"]


def test_valid_flow_passes(validator):
    assert problems(validator, VALID) == []


def test_unknown_type_and_property_fail_on_the_right_branch(validator):
    found = problems(validator, """
id: a
namespace: b
tasks:
  - {id: x, type: test.Nap, duration: PT1S, colour: red}
  - {id: y, type: test.Logg, message: m}
""")
    assert any(path == ["tasks", 0] and "'colour' was unexpected" in msg for path, msg in found)
    assert any(path == ["tasks", 1, "type"] for path, _ in found)


def test_child_tasks_point_to_the_dispatch(validator):
    found = problems(validator, """
id: a
namespace: b
tasks:
  - id: s
    type: test.Sequential
    tasks:
      - id: d
        type: test.Dag
        tasks:
          - task: {id: n, type: test.Nap, duration: PT1S, colour: red}
""")
    assert [p for p, _ in found] == [["tasks", 0, "tasks", 0, "tasks", 0, "task"]]


def test_expression_accepted_for_typed_property(validator):
    ok = "id: a\nnamespace: b\ntasks: [{id: n, type: test.Nap, duration: PT1S, count: '{{ 2 }}'}]\n"
    bad = "id: a\nnamespace: b\ntasks: [{id: n, type: test.Nap, duration: PT1S, count: two}]\n"
    assert problems(validator, ok) == []
    assert [p for p, _ in problems(validator, bad)] == [["tasks", 0, "count"]]


def test_inputs_and_flow_properties(validator):
    found = problems(validator, """
id: a
namespace: b
labels: [{key: env, value: dev}]
inputs: [{id: n, type: INT, min: x}]
tasks: [{id: n, type: test.Log, message: m}]
concurrency: {limit: 0}
""")
    assert sorted(p[0] for p, _ in found) == ["concurrency", "inputs"]


def test_real_registry_schema_is_valid():
    schema = flow_json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    assert "core.Log" in schema["definitions"]["task"]["properties"]["type"]["enum"]


def test_child_task_fields_never_take_an_expression(schema):
    branch = schema["definitions"]["test.If"]["properties"]["else"]
    assert "#/definitions/expression" not in str(branch) and "#/definitions/task" in str(branch)
