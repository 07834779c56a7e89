"""core.Flow triggers: states, Kestra conditions, preconditions over several upstream flows, once per end."""

from __future__ import annotations

import time

import pytest

from tiercel.engine.scheduler import Conditions, window_open
from tiercel.model import Execution

UPSTREAM = """\
id: extract
namespace: demo.flows
labels: {stage: raw}
inputs:
  - {id: fail, type: BOOLEAN, defaults: false}
tasks:
  - {id: rows, type: core.OutputValues, values: {count: 42}}
  - {id: maybe, type: core.Fail, runIf: "{{ inputs.fail }}"}
outputs:
  - {id: count, type: INT, value: "{{ outputs.rows.values.count }}"}
"""

DOWNSTREAM = """\
id: transform
namespace: demo.flows
inputs:
  - {id: upstream, type: STRING}
  - {id: count, type: INT, defaults: 0}
tasks:
  - {id: log, type: core.Log, message: "{{ trigger.executionId }} {{ trigger.state }} {{ inputs.count }}"}
triggers:
  - id: after_extract
    type: core.Flow
    states: [SUCCESS]
    inputs: {upstream: "{{ trigger.executionId }}", count: "{{ trigger.outputs.count }}"}
    conditions:
      - {type: ExecutionFlow, namespace: demo.flows, flowId: extract}
      - type: io.kestra.plugin.core.condition.ExecutionLabels
        labels: {stage: raw}
      - type: Not
        conditions:
          - {type: ExecutionOutputs, expression: "{{ trigger.outputs.count > 100 }}"}
"""

JOIN = """\
id: report
namespace: demo.flows
tasks:
  - {id: log, type: core.Log, message: "both ready ({{ trigger.flowId }} came last)"}
triggers:
  - id: both
    type: core.Flow
    preconditions:
      id: a_and_b
      timeWindow: {type: SLIDING_WINDOW, window: PT1H}
      flows:
        - {namespace: demo.flows, flowId: extract}
        - {namespace: demo.flows, flowId: other}
"""

MULTIPLE = """\
id: report2
namespace: demo.flows
tasks:
  - {id: log, type: core.Log, message: "multiple condition met"}
triggers:
  - id: both
    type: core.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.MultipleCondition
        id: extract_and_other
        window: PT1H
        conditions:
          extracted: {type: ExecutionFlow, namespace: demo.flows, flowId: extract}
          othered: {type: ExecutionFlow, namespace: demo.flows, flowId: other}
"""

OTHER = """\
id: other
namespace: demo.flows
tasks:
  - {id: log, type: core.Log, message: other}
"""


def test_flow_trigger_once_per_upstream_end_with_conditions_and_preconditions(api, h):
    for source in (UPSTREAM, DOWNSTREAM, JOIN, MULTIPLE, OTHER):
        h.deploy(api, source)
    ok = api.post("/api/v1/executions/demo.flows/extract", params={"wait": True}).json()
    failed = api.post("/api/v1/executions/demo.flows/extract", json={"fail": True}, params={"wait": True}).json()
    assert (ok["state"], failed["state"]) == ("SUCCESS", "FAILED")
    started = h.wait_for(lambda: (rows := h.executions(api, "transform", state="SUCCESS")) and rows)
    time.sleep(0.5)
    assert len(h.executions(api, "transform")) == 1  # the FAILED end does not match `states`
    ex = started[0]
    assert ex["inputs"] == {"upstream": ok["id"], "count": 42}
    variables = ex["trigger"]["variables"]
    assert (variables["executionId"], variables["flowId"], variables["state"]) == (ok["id"], "extract", "SUCCESS")
    assert variables["outputs"] == {"count": 42} and ex["trigger"]["type"] == "core.Flow"

    assert h.executions(api, "report") == [] and h.executions(api, "report2") == []  # one of two upstreams ended
    api.post("/api/v1/executions/demo.flows/other", params={"wait": True})
    report = h.wait_for(lambda: h.executions(api, "report"))
    assert report[0]["trigger"]["variables"]["flowId"] == "other"
    assert len(h.wait_for(lambda: h.executions(api, "report2"))) == 1
    api.post("/api/v1/executions/demo.flows/other", params={"wait": True})
    time.sleep(0.5)
    assert len(h.executions(api, "report")) == 1  # reset on success: `extract` must end again first
    assert len(h.executions(api, "report2")) == 1


def _ex(**kw) -> Execution:
    base = dict(id="e1", namespace="company.team", flow_id="extract", flow_hash="h", state="SUCCESS", created_at=0.0,
                labels={"env": "prod"}, outputs={"n": 3})
    base.update(kw)
    return Execution(**base)


@pytest.fixture
def conditions(tmp_path):
    from tiercel.engine.runtime import Runtime

    rt = Runtime(tmp_path / "home")
    yield Conditions(rt)
    rt.close()


@pytest.mark.parametrize("cond, expected", [
    ({"type": "ExecutionFlow", "namespace": "company.team", "flowId": "extract"}, True),
    ({"type": "ExecutionFlow", "namespace": "company.team", "flowId": "load"}, False),
    ({"type": "ExecutionNamespace", "namespace": "company", "comparison": "PREFIX"}, True),
    ({"type": "ExecutionNamespace", "namespace": "company", "prefix": True}, True),
    ({"type": "ExecutionNamespace", "namespace": "company"}, False),
    ({"type": "ExecutionStatus", "in": ["SUCCESS", "WARNING"]}, True),
    ({"type": "io.kestra.core.models.conditions.types.ExecutionStatusCondition", "notIn": ["SUCCESS"]}, False),
    ({"type": "ExecutionLabels", "labels": [{"key": "env", "value": "prod"}]}, True),
    ({"type": "ExecutionOutputs", "expression": "{{ trigger.outputs.n == 3 }}"}, True),
    ({"type": "Expression", "expression": "trigger.outputs.n > 5"}, False),
    ({"type": "Or", "conditions": [{"type": "ExecutionStatus", "in": ["FAILED"]}, {"type": "Weekend", "date": "2026-01-03T10:00:00Z"}]}, True),
    ({"type": "Not", "conditions": [{"type": "DayWeek", "dayOfWeek": "MONDAY", "date": "2026-01-05T10:00:00Z"}]}, False),
    ({"type": "DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": "FIRST", "date": "2026-01-05T10:00:00Z"}, True),
    ({"type": "TimeBetween", "after": "09:00:00", "before": "17:00:00", "date": "2026-01-05T10:00:00+00:00"}, True),
    ({"type": "TimeBetween", "after": "11:00:00", "date": "2026-01-05T10:00:00+00:00"}, False),
    ({"type": "DateTimeBetween", "after": "2026-01-01T00:00:00Z", "before": "2026-02-01T00:00:00Z", "date": "2026-01-05T10:00:00Z"}, True),
    ({"type": "io.kestra.plugin.core.condition.PublicHoliday", "country": "FR", "date": "2026-07-14T10:00:00Z"}, True),
    ({"type": "PublicHoliday", "country": "FR", "date": "2026-07-15T10:00:00Z"}, False),
    ({"type": "PublicHolidayCondition", "country": "US", "subDivision": "CA", "date": "2026-12-25T10:00:00Z"}, True),
    ({"type": "HasRetryAttempt", "in": ["FAILED"]}, True),
    ({"type": "HasRetryAttempt", "notIn": ["FAILED"]}, False),
])
def test_kestra_conditions(conditions, cond, expected):
    from tiercel.model import Attempt, TaskRun

    ex = _ex()
    ex.task_runs["tr1"] = TaskRun("tr1", ex.id, "flaky", None, None, None, "SUCCESS", 0, 0.0, attempt=2,
                                  attempts=[Attempt(1, "FAILED", 0.0, 1.0), Attempt(2, "SUCCESS", 1.0, 2.0)])
    variables = {"executionId": ex.id, "outputs": ex.outputs, "state": ex.state}
    assert conditions.check(cond, variables, ex) is expected


def test_unknown_condition_is_an_error(conditions):
    with pytest.raises(ValueError, match="unknown condition type `Sometimes`"):
        conditions.check({"type": "Sometimes"}, {}, _ex())


def test_time_windows():
    now = time.time()
    assert window_open(now - 30, now, {"type": "SLIDING_WINDOW", "window": "PT1M"})
    assert not window_open(now - 90, now, {"type": "SLIDING_WINDOW", "window": "PT1M"})
    assert window_open(now - 1, now, {"type": "DURATION_WINDOW", "window": "PT24H"})
    assert not window_open(now - 86400 * 2, now, {})


PAUSER = """\
id: pauser
namespace: demo.compat
tasks:
  - {id: data, type: io.kestra.plugin.core.debug.Return, format: ready}
  - {id: wait, type: io.kestra.plugin.core.flow.Pause, delay: PT0.3S}
"""

ON_PAUSED = """\
id: on_paused
namespace: demo.compat
inputs:
  - {id: upstream_value, type: STRING}
tasks:
  - {id: log, type: core.Log, message: "{{ inputs.upstream_value }}"}
triggers:
  - id: paused
    type: io.kestra.plugin.core.trigger.Flow
    states: [PAUSED]
    inputs: {upstream_value: "{{ outputs.data.value }}"}
    preconditions:
      id: from_pauser
      flows:
        - {namespace: "{{ flow.namespace }}", flowId: pauser, states: [PAUSED]}
"""

HOOK = """\
id: hooked
namespace: demo.compat
tasks:
  - {id: log, type: core.Log, message: "{{ trigger.body }}"}
triggers:
  - {id: hook, type: io.kestra.plugin.core.trigger.Webhook, key: "{{ secret('HOOK_KEY') }}"}
"""

ANSWER = """\
id: answer
namespace: demo.compat
tasks:
  - {id: echo, type: core.Return, format: "challenge-{{ trigger.parameters.c[0] }}"}
outputs:
  - {id: challenge, type: STRING, value: "{{ outputs.echo.value }}"}
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: answer-key-1234
    wait: true
    returnOutputs: true
    responseContentType: text/plain
"""


def test_flow_trigger_on_a_non_terminal_state_reads_upstream_task_outputs_and_webhook_secret_key(tmp_path, h):
    server = h.ServerProcess(tmp_path / "home", env={"TIERCEL_SECRET_HOOK_KEY": "s3cr3t-key-1234"}).start()
    try:
        with server.client() as api:
            for source in (PAUSER, ON_PAUSED, HOOK, ANSWER):
                h.deploy(api, source)
            up = api.post("/api/v1/executions/demo.compat/pauser", params={"wait": True}).json()
            assert up["state"] == "SUCCESS"
            started = h.wait_for(lambda: h.executions(api, "on_paused", state="SUCCESS"))
            assert len(started) == 1
            assert started[0]["inputs"] == {"upstream_value": "ready"}
            assert started[0]["trigger"]["variables"]["state"] == "PAUSED"

            assert api.post("/api/v1/executions/webhook/demo.compat/hooked/wrong-key").status_code == 404
            r = api.post("/api/v1/executions/webhook/demo.compat/hooked/s3cr3t-key-1234", json={"a": 1})
            assert r.status_code == 200, r.text
            r = api.get("/api/v1/executions/webhook/demo.compat/answer/answer-key-1234", params={"c": "42"})
            assert (r.status_code, r.text, r.headers["content-type"].split(";")[0]) == (200, "challenge-42", "text/plain")
    finally:
        server.stop()
