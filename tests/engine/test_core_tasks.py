"""Every core task and common behaviour, run for real by the engine (in-process, SQLite home)."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from tiercel.testing.harness import run_flow, task_run


def run(tmp_path, body: str, inputs=None, **kw):
    source = "id: t\nnamespace: tests.engine\n" + body
    return run_flow(source, inputs=inputs, home=tmp_path / "home", **kw)


def states(ex):
    return {(tr["taskId"], tr["value"]): tr["state"] for tr in ex["taskRuns"]}


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_log_return_outputs_and_flow_outputs(tmp_path):
    ex = run(tmp_path, """
inputs:
  - {id: name, type: STRING, defaults: world}
variables: {greeting: Hello}
tasks:
  - {id: say, type: core.Log, message: ["{{ vars.greeting }}, {{ inputs.name }}", second line]}
  - {id: answer, type: core.Return, format: "{{ 6 * 7 }}"}
  - {id: values, type: core.OutputValues, values: {a: "{{ outputs.answer.value }}", b: [1, 2]}}
outputs:
  - {id: result, type: INT, value: "{{ outputs.answer.value }}"}
  - {id: b, type: JSON, value: "{{ outputs['values']['values'].b }}"}
""")
    assert ex["state"] == "SUCCESS"
    assert task_run(ex, "answer")["outputs"] == {"value": "42"}
    assert task_run(ex, "values")["outputs"] == {"values": {"a": "42", "b": [1, 2]}}
    assert ex["outputs"] == {"result": 42, "b": [1, 2]}


def test_sequential_chain_reads_previous_outputs(tmp_path):
    tasks = "\n".join(f"  - {{id: t{i}, type: core.Return, format: \"{{{{ outputs.t{i - 1}.value | int + 1 }}}}\"}}"
                      for i in range(1, 30))
    ex = run(tmp_path, "tasks:\n  - {id: t0, type: core.Return, format: '0'}\n" + tasks)
    assert ex["state"] == "SUCCESS"
    assert task_run(ex, "t29")["outputs"]["value"] == "29"
    assert [tr["taskId"] for tr in ex["taskRuns"]] == [f"t{i}" for i in range(30)]


def test_parallel_runs_concurrently_and_honours_limit(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: all
    type: core.Parallel
    tasks:
      - {id: a, type: core.Sleep, duration: PT0.4S}
      - {id: b, type: core.Sleep, duration: PT0.4S}
      - {id: c, type: core.Sleep, duration: PT0.4S}
  - id: limited
    type: core.Parallel
    concurrent: 1
    tasks:
      - {id: d, type: core.Sleep, duration: PT0.2S}
      - {id: e, type: core.Sleep, duration: PT0.2S}
""")
    assert ex["state"] == "SUCCESS"
    all_ = task_run(ex, "all")
    assert ts(all_["endDate"]) - ts(all_["startDate"]) < 1.0  # three 0.4 s sleeps at once
    d, e = task_run(ex, "d"), task_run(ex, "e")
    assert ts(e["startDate"]) >= ts(d["endDate"]) - 0.01  # one at a time


@pytest.mark.parametrize("condition,branch", [("true", "yes_"), ("false", "no_"), ("0", "no_"), ("''", "no_"),
                                              ("'-0'", "no_"), ("'anything'", "yes_")])
def test_if_uses_kestra_truthiness(tmp_path, condition, branch):
    ex = run(tmp_path, f"""
tasks:
  - id: check
    type: core.If
    condition: "{{{{ {condition} }}}}"
    then: [{{id: yes_, type: core.Log, message: then}}]
    else: [{{id: no_, type: core.Log, message: else}}]
""")
    assert ex["state"] == "SUCCESS"
    assert [tr["taskId"] for tr in ex["taskRuns"] if tr["taskId"] != "check"] == [branch]


def test_switch_cases_and_defaults(tmp_path):
    body = """
inputs: [{id: v, type: STRING}]
tasks:
  - id: sw
    type: core.Switch
    value: "{{ inputs.v }}"
    cases:
      a: [{id: ca, type: core.Return, format: A}]
      b: [{id: cb, type: core.Return, format: B}]
    defaults: [{id: other, type: core.Return, format: other}]
"""
    assert [t["taskId"] for t in run(tmp_path, body, {"v": "b"})["taskRuns"]] == ["sw", "cb"]
    assert [t["taskId"] for t in run(tmp_path, body, {"v": "zzz"})["taskRuns"]] == ["sw", "other"]


def test_foreach_values_taskrun_value_and_outputs_per_value(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: each
    type: core.ForEach
    values: '["x", "y"]'
    tasks:
      - id: inner
        type: core.ForEach
        values: [1, 2]
        tasks:
          - {id: pair, type: core.Return, format: "{{ parent.taskrun.value }}-{{ taskrun.value }}"}
  - {id: read, type: core.Return, format: "{{ outputs.pair['y']['2'].value }}"}
""")
    assert ex["state"] == "SUCCESS"
    pairs = sorted(tr["outputs"]["value"] for tr in ex["taskRuns"] if tr["taskId"] == "pair")
    assert pairs == ["x-1", "x-2", "y-1", "y-2"]
    assert task_run(ex, "read")["outputs"]["value"] == "y-2"


def test_foreach_concurrency_limit(tmp_path):
    body = """
tasks:
  - id: each
    type: core.ForEach
    values: [1, 2, 3]
    concurrencyLimit: {limit}
    tasks:
      - {{id: nap, type: core.Sleep, duration: PT0.3S}}
"""
    serial = task_run(run(tmp_path, body.format(limit=1)), "each")
    parallel = task_run(run(tmp_path, body.format(limit=0)), "each")
    assert ts(serial["endDate"]) - ts(serial["startDate"]) >= 0.85
    assert ts(parallel["endDate"]) - ts(parallel["startDate"]) < 0.8


def test_foreach_accepts_an_expression(tmp_path):
    ex = run(tmp_path, """
inputs: [{id: items, type: JSON}]
tasks:
  - id: each
    type: core.ForEach
    values: "{{ inputs.items }}"
    tasks: [{id: echo, type: core.Return, format: "{{ taskrun.value }}"}]
""", {"items": '["a", "b"]'})
    assert sorted(tr["value"] for tr in ex["taskRuns"] if tr["taskId"] == "echo") == ["a", "b"]


def test_errors_and_finally_at_flow_level(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: boom, type: core.Fail, errorMessage: "it broke"}
  - {id: never, type: core.Log, message: never}
errors:
  - {id: handler, type: core.Log, message: "handling"}
finally:
  - {id: cleanup, type: core.Log, message: cleanup}
""")
    assert ex["state"] == "FAILED"
    assert "it broke" in ex["error"]
    assert states(ex) == {("boom", None): "FAILED", ("handler", None): "SUCCESS", ("cleanup", None): "SUCCESS"}


def test_errors_of_a_flowable_and_allow_failure(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: tolerant
    type: core.AllowFailure
    tasks: [{id: bad, type: core.Fail}]
    errors: [{id: local_handler, type: core.Log, message: caught}]
  - {id: next, type: core.Log, message: "flow goes on"}
""")
    assert ex["state"] == "WARNING"
    assert states(ex)[("local_handler", None)] == "SUCCESS"
    assert states(ex)[("next", None)] == "SUCCESS"
    assert states(ex)[("tolerant", None)] == "WARNING"


def test_allow_failure_allow_warning_run_if_and_disabled(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: tolerated, type: core.Fail, allowFailure: true}
  - {id: promoted, type: core.Fail, allowFailure: true, allowWarning: true}
  - {id: skipped, type: core.Log, message: x, runIf: "{{ 1 == 2 }}"}
  - {id: switched_off, type: core.Log, message: x, disabled: true}
""")
    assert states(ex) == {("tolerated", None): "WARNING", ("promoted", None): "SUCCESS", ("skipped", None): "SKIPPED"}
    assert ex["state"] == "WARNING"


def test_retry_constant_then_success_with_warning_on_retry(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: flaky
    type: core.Fail
    condition: "{{ taskrun.attemptsCount < 2 }}"
    retry: {type: constant, interval: PT0.05S, maxAttempt: 5, warningOnRetry: true}
""")
    flaky = task_run(ex, "flaky")
    assert [a["state"] for a in flaky["attempts"]] == ["FAILED", "FAILED", "SUCCESS"]
    assert flaky["state"] == "WARNING"


def test_retry_exponential_gives_up_after_max_attempt(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: always
    type: core.Fail
    retry: {type: exponential, interval: PT0.02S, maxInterval: PT0.05S, maxAttempt: 3}
""")
    assert ex["state"] == "FAILED"
    assert len(task_run(ex, "always")["attempts"]) == 3


def test_timeout_cuts_a_long_task(tmp_path):
    started = time.monotonic()
    ex = run(tmp_path, "tasks:\n  - {id: slow, type: core.Sleep, duration: PT20S, timeout: PT0.2S}\n")
    assert time.monotonic() - started < 5
    assert ex["state"] == "FAILED"
    assert "timed out after 0.2 s" in task_run(ex, "slow")["error"]


def test_dag_respects_dependencies(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: dag
    type: core.Dag
    tasks:
      - task: {id: last, type: core.Return, format: "{{ outputs.left.value }}{{ outputs.right.value }}"}
        dependsOn: [left, right]
      - task: {id: left, type: core.Return, format: L}
        dependsOn: [root]
      - task: {id: right, type: core.Return, format: R}
        dependsOn: [root]
      - task: {id: root, type: core.Return, format: "."}
""")
    assert ex["state"] == "SUCCESS"
    assert task_run(ex, "last")["outputs"]["value"] == "LR"
    order = [tr["taskId"] for tr in ex["taskRuns"]]
    assert order.index("root") < order.index("left") < order.index("last")


def test_waitfor_repeats_until_condition(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: wait
    type: core.WaitFor
    condition: "{{ outputs.tick.value | int >= 2 }}"
    checkFrequency: {interval: PT0.01S, maxIterations: 10}
    tasks: [{id: tick, type: core.Return, format: "{{ taskrun.iteration }}"}]
""")
    assert ex["state"] == "SUCCESS"
    assert task_run(ex, "wait")["outputs"]["iterationCount"] == 3


def test_pause_with_delay_resumes_by_itself(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: gate, type: core.Pause, delay: PT0.2S}
  - {id: after, type: core.Log, message: resumed}
""")
    assert ex["state"] == "SUCCESS"
    gate = task_run(ex, "gate")
    assert ts(gate["endDate"]) - ts(gate["startDate"]) >= 0.19


def test_pause_timeout_fails_when_not_resumed(tmp_path):
    ex = run(tmp_path, "tasks:\n  - {id: gate, type: core.Pause, timeout: PT0.1S}\n")
    assert ex["state"] == "FAILED"
    assert "not resumed" in task_run(ex, "gate")["error"]


def test_labels_task_sets_execution_labels(tmp_path):
    ex = run(tmp_path, """
labels: {team: data}
tasks:
  - {id: tag, type: core.Labels, labels: {run: "{{ 1 + 1 }}"}}
""")
    assert ex["labels"] == {"team": "data", "run": "2", "system.correlationId": ex["id"]}


def test_subflow_from_the_same_folder_with_outputs_and_failure(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "child.yaml").write_text("""id: child
namespace: tests.engine
inputs: [{id: n, type: INT}]
tasks:
  - {id: check, type: core.Fail, condition: "{{ inputs.n < 0 }}", errorMessage: negative}
  - {id: double, type: core.Return, format: "{{ inputs.n * 2 }}"}
outputs: [{id: doubled, type: INT, value: "{{ outputs.double.value }}"}]
""")
    (flows / "parent.yaml").write_text("""id: parent
namespace: tests.engine
inputs: [{id: n, type: INT}]
tasks:
  - {id: call, type: core.Subflow, namespace: tests.engine, flowId: child, inputs: {n: "{{ inputs.n }}"}}
  - {id: show, type: core.Return, format: "{{ outputs.call.outputs.doubled }}"}
""")
    ok = run_flow(flows / "parent.yaml", inputs={"n": 21}, home=tmp_path / "home")
    assert ok["state"] == "SUCCESS"
    assert task_run(ok, "show")["outputs"]["value"] == "42"
    bad = run_flow(flows / "parent.yaml", inputs={"n": -1}, home=tmp_path / "home")
    assert bad["state"] == "FAILED"
    assert task_run(bad, "call")["outputs"]["state"] == "FAILED"


def test_subflow_unknown_flow_fails_with_a_clear_error(tmp_path):
    ex = run(tmp_path, "tasks:\n  - {id: call, type: core.Subflow, namespace: nowhere, flowId: ghost}\n")
    assert ex["state"] == "FAILED"
    assert "flow `nowhere.ghost` not found" in task_run(ex, "call")["error"]


def test_kestra_names_run_unchanged(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.hello is defined }}"
  - id: each
    type: io.kestra.plugin.core.flow.EachSequential
    value: ["a", "b"]
    tasks:
      - {id: echo, type: io.kestra.core.tasks.debugs.Echo, format: "{{ taskrun.value }}"}
""")
    assert ex["state"] == "SUCCESS", ex
    assert sorted(tr["value"] for tr in ex["taskRuns"] if tr["taskId"] == "echo") == ["a", "b"]


def test_rendering_error_names_task_and_property(tmp_path):
    ex = run(tmp_path, "tasks:\n  - {id: bad, type: core.Log, message: '{{ outputs.missing.value }}'}\n")
    assert ex["state"] == "FAILED"
    error = task_run(ex, "bad")["error"]
    assert "task `bad`" in error and "`message`" in error and "missing" in error


def test_secrets_are_masked_in_logs_and_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCEL_SECRET_API_TOKEN", "s3cr3t-value")
    ex = run(tmp_path, """
tasks:
  - {id: use, type: core.Log, message: "token={{ secret('API_TOKEN') }}"}
  - {id: leak, type: core.Return, format: "{{ secret('API_TOKEN') }}"}
""")
    assert ex["state"] == "SUCCESS"
    assert task_run(ex, "leak")["outputs"]["value"] == "******"
    from tiercel.backend import Stores

    stores = Stores.of_home(tmp_path / "home")
    logs = stores.logs.query(ex["id"])
    stores.close()
    assert any("token=******" in entry["message"] for entry in logs)
    assert not any("s3cr3t-value" in entry["message"] for entry in logs)


@pytest.mark.parametrize("behavior,state", [("CANCEL", "CANCELLED"), ("FAIL", "FAILED")])
def test_concurrency_cancel_and_fail(tmp_path, behavior, state):
    import asyncio

    from tiercel.engine.runtime import Runtime
    from tiercel.flow import load_flow

    flow = load_flow(f"""id: limited
namespace: tests.engine
concurrency: {{limit: 1, behavior: {behavior}}}
tasks:
  - {{id: nap, type: core.Sleep, duration: PT0.3S}}
""")
    rt = Runtime(tmp_path / "home")

    async def main():
        stop = asyncio.Event()
        loop = asyncio.create_task(rt.serve(stop))
        first = rt.new_execution(flow, {})
        second = rt.new_execution(flow, {})
        rt.submit(first)
        rt.submit(second)
        a = await rt.wait(first.id)
        b = rt.stores.executions.load(second.id)
        stop.set()
        await loop
        return a, b

    a, b = asyncio.run(main())
    rt.close()
    assert a.state == "SUCCESS"
    assert b.state == state
    assert "concurrency limit" in b.error


def test_foreachitem_splits_a_file_into_subflow_batches(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "count.yaml").write_text("""id: count
namespace: tests.engine
inputs: [{id: data, type: STRING}]
tasks:
  - {id: read, type: core.Return, format: "{{ read(inputs.data) | trim }}"}
outputs: [{id: lines, type: STRING, value: "{{ outputs.read.value }}"}]
""")
    (flows / "items.yaml").write_text("""id: items
namespace: tests.engine
inputs: [{id: file, type: FILE}]
tasks:
  - id: each
    type: core.ForEachItem
    items: "{{ inputs.file }}"
    batch: {rows: 2}
    namespace: tests.engine
    flowId: count
    inputs: {data: "{{ taskrun.items }}"}
""")
    data = tmp_path / "in.txt"
    data.write_text("a\nb\nc\nd\ne\n")
    from tiercel.testing.harness import tiercel

    proc = tiercel("run", str(flows / "items.yaml"), "-i", f"file={data}", "--json", home=tmp_path / "home")
    import json

    ex = json.loads(proc.stdout)
    each = task_run(ex, "each")
    assert ex["state"] == "SUCCESS"
    assert each["outputs"]["numberOfBatches"] == 3
    assert each["outputs"]["subflowOutputs"] == [{"lines": "a\nb"}, {"lines": "c\nd"}, {"lines": "e"}]


def test_working_directory_shares_files_between_tasks(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: wd
    type: core.WorkingDirectory
    inputFiles: {config.json: '{"a": 1}'}
    outputFiles: ["*.json"]
    tasks:
      - {id: inside, type: core.Log, message: "{{ workingDir }}"}
  - {id: after, type: core.Return, format: "{{ read(outputs.wd.outputFiles['config.json']) }}"}
""")
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "after")["outputs"]["value"] == '{"a": 1}'


def test_large_outputs_are_stored_by_reference(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: big, type: core.Return, format: "{{ 'x' * 300000 }}"}
  - {id: size, type: core.Return, format: "{{ outputs.big.value | length }}"}
""")
    assert task_run(ex, "size")["outputs"]["value"] == "300000"
    assert len(task_run(ex, "big")["outputs"]["value"]) == 300000  # resolved when loaded
    from tiercel.backend import Stores

    stores = Stores.of_home(tmp_path / "home")
    raw = stores.db.one("SELECT outputs FROM task_runs WHERE task_id = 'big'")[0]
    stores.close()
    assert raw.startswith('{"$ref":"tiercel://')


def test_dates_render_as_iso_text_and_bad_rendered_values_name_the_property(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: stamp, type: core.Return, format: "{{ now() }}"}
  - {id: nap, type: core.Sleep, duration: "{{ 'soon' }}"}
""")
    assert task_run(ex, "stamp")["outputs"]["value"].endswith("Z")
    assert task_run(ex, "nap")["error"].startswith("task `nap`: property `duration`:")
    assert "rendered to 'soon'" in task_run(ex, "nap")["error"]


def test_a_task_can_end_warning_through_its_context(tmp_path):
    """ctx.warning() ends the attempt WARNING (plugins use it for soft failures)."""
    import tiercel
    from tiercel.plugins import get_registry

    class Soft(tiercel.Task):
        """A task that succeeds with a warning."""

        type = "tests.Soft"

        async def run(self, ctx):
            ctx.warning("almost")
            return {"cache": str(ctx.cache_dir)}

    registry = get_registry()
    registry._add("task", Soft, registry.plugins["tiercel"])
    try:
        ex = run(tmp_path, "tasks:\n  - {id: soft, type: tests.Soft}\n")
    finally:
        for table in (registry._by_kind["task"], registry._canonical["task"]):
            table.pop("tests.Soft", None)
        registry.plugins["tiercel"].components[:] = [c for c in registry.plugins["tiercel"].components
                                                      if c.type != "tests.Soft"]
    assert ex["state"] == "WARNING"
    assert task_run(ex, "soft")["outputs"]["cache"].endswith("cache")


def test_dag_skipped_nodes_unlock_dependents_and_failures_stop_them(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: dag
    type: core.Dag
    concurrent: 1
    tasks:
      - task: {id: maybe, type: core.Log, message: x, runIf: "false"}
      - task: {id: after_skip, type: core.Return, format: ok}
        dependsOn: [maybe]
      - task: {id: boom, type: core.Fail}
        dependsOn: [after_skip]
      - task: {id: never, type: core.Log, message: x}
        dependsOn: [boom]
""")
    assert ex["state"] == "FAILED"
    assert states(ex) == {("dag", None): "FAILED", ("maybe", None): "SKIPPED", ("after_skip", None): "SUCCESS",
                          ("boom", None): "FAILED"}


@pytest.mark.parametrize("limit", [0, 1])
def test_restart_reruns_only_the_failed_iteration_of_a_foreach(tmp_path, limit):
    import asyncio

    from tiercel.engine.runtime import Runtime
    from tiercel.flow import load_flow

    flow = load_flow(f"""id: t
namespace: tests.engine
tasks:
  - id: each
    type: core.ForEach
    values: ["1", "2", "3", "4"]
    concurrencyLimit: {limit}
    tasks:
      - {{id: work, type: core.Fail, condition: "{{{{ taskrun.value == '2' and taskrun.attemptsCount < 1 }}}}"}}
  - {{id: after, type: core.Log, message: done}}
""")
    rt = Runtime(tmp_path / "home")

    async def main():
        stop = asyncio.Event()
        loop = asyncio.create_task(rt.serve(stop))
        ex = rt.new_execution(flow, {})
        rt.submit(ex)
        first = (await rt.wait(ex.id)).state
        rt.restart(ex.id)
        second = await rt.wait(ex.id)
        stop.set()
        rt.wake()
        await loop
        return first, rt.stores.executions.json(second.id)

    first, ex = asyncio.run(main())
    rt.close()
    assert first == "FAILED"
    assert ex["state"] == "SUCCESS"
    attempts = {tr["value"]: len(tr["attempts"]) for tr in ex["taskRuns"] if tr["taskId"] == "work"}
    assert attempts == {"1": 1, "2": 2, "3": 1, "4": 1}  # with limit 1, 3 and 4 first run after the restart
    assert task_run(ex, "after")["state"] == "SUCCESS"
