"""Flows on the real core plugin: the DESIGN.md example, Kestra names, and the core error texts."""

import pytest

from tiercel.flow import FlowValidationError, load_flow
from tiercel.plugins import get_registry

DESIGN_EXAMPLE = """\
id: hello
namespace: company.team
labels: {env: dev}
inputs:
  - {id: name, type: STRING, defaults: world}
variables: {greeting: Hello}
tasks:
  - id: say
    type: core.Log
    message: "{{ vars.greeting }}, {{ inputs.name }}"
  - id: answer
    type: core.Return
    format: "{{ 6 * 7 }}"
errors: []
finally: []
triggers:
  - {id: nightly, type: core.Schedule, cron: "0 2 * * *", timezone: Europe/Paris}
outputs:
  - {id: result, type: STRING, value: "{{ outputs.answer.value }}"}
concurrency: {limit: 1, behavior: QUEUE}
"""


@pytest.fixture(scope="module")
def core():
    registry = get_registry()
    if registry.get("task", "core.Log") is None:
        pytest.fail(f"the core plugin did not load: {registry.plugins['tiercel'].errors}")
    return registry


def test_design_example(core):
    flow = load_flow(DESIGN_EXAMPLE, "hello.yaml", registry=core)
    assert [t.type for t, _, _ in flow.walk()] == ["core.Log", "core.Return"]
    assert flow.triggers[0].type == "core.Schedule"


def test_kestra_flow_runs_unchanged(core):
    flow = load_flow("""\
id: kestra
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - {id: a, type: io.kestra.plugin.core.debug.Return, format: x}
taskDefaults:
  - type: io.kestra.plugin.core.log
    values: {level: WARN}
""", registry=core)
    assert flow.task("hello").type == "core.Log" and flow.task("hello").level == "WARN"


def test_core_logg_suggests_core_log(core):
    with pytest.raises(FlowValidationError) as info:
        load_flow("id: a\nnamespace: b\ntasks:\n  - {id: x, type: core.Logg, message: m}\n", "a.yaml", registry=core)
    assert str(info.value) == "a.yaml:4:19: task `x`: unknown task type `core.Logg` (did you mean core.Log?)"


def test_core_dag_errors_are_located_once(core):
    with pytest.raises(FlowValidationError) as info:
        load_flow("""\
id: a
namespace: b
tasks:
  - id: graph
    type: core.Dag
    tasks:
      - task: {id: x, type: core.Log, message: m}
        dependsOn: [y]
      - task: {id: y, type: core.Log, message: m}
        dependsOn: [x]
""", "a.yaml", registry=core)
    assert [str(e) for e in info.value.errors] == ["a.yaml:8:20: task `x`: dependency cycle: x -> y -> x"]
