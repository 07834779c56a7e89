"""Kestra compatibility, the second mile: retry on flowables and Subflow, Count, state, sla, checks, taskCache…"""

from __future__ import annotations

from tiercel.testing.harness import run_flow, task_run

#: A child flow that fails on its first two executions (a KV counter), then succeeds.
FLAKY = """\
id: flaky
namespace: company.team
tasks:
  - id: seen
    type: io.kestra.plugin.core.kv.Get
    key: runs
  - id: count
    type: io.kestra.plugin.core.kv.Set
    key: runs
    value: "{{ (outputs.seen.value ?? 0) | int + 1 }}"
  - id: fail_twice
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ (outputs.seen.value ?? 0) | int < 2 }}"
    errorMessage: "run {{ (outputs.seen.value ?? 0) | int + 1 }} fails"
outputs:
  - id: run
    type: INT
    value: "{{ (outputs.seen.value ?? 0) | int + 1 }}"
"""


def runs(ex, task_id):
    return [tr for tr in ex["taskRuns"] if tr["taskId"] == task_id]


def test_retry_on_a_flowable_runs_its_children_again(tmp_path):
    ex = run_flow("""
id: retry_flowable
namespace: company.team
tasks:
  - id: attempt
    type: io.kestra.plugin.core.flow.Sequential
    retry:
      type: constant
      interval: PT0.1S
      maxAttempts: 3
    tasks:
      - id: seen
        type: io.kestra.plugin.core.kv.Get
        key: tries
      - id: count
        type: io.kestra.plugin.core.kv.Set
        key: tries
        value: "{{ (outputs.seen.value ?? 0) | int + 1 }}"
      - id: fail_twice
        type: io.kestra.plugin.core.execution.Fail
        condition: "{{ (outputs.seen.value ?? 0) | int < 2 }}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.seen.value }}"
""", home=tmp_path / "home")
    assert ex["state"] == "SUCCESS", ex
    seq = task_run(ex, "attempt")
    assert [a["state"] for a in seq["attempts"]] == ["FAILED", "FAILED", "SUCCESS"]
    assert len(runs(ex, "fail_twice")) == 1 and task_run(ex, "after")["outputs"]["value"] == "2"


def test_retry_on_a_flowable_gives_up_after_max_attempts(tmp_path):
    ex = run_flow("""
id: retry_flowable_fails
namespace: company.team
tasks:
  - id: attempt
    type: io.kestra.plugin.core.flow.Sequential
    retry: {type: constant, interval: PT0.05S, maxAttempt: 2}
    tasks:
      - {id: boom, type: io.kestra.plugin.core.execution.Fail, errorMessage: always}
""", home=tmp_path / "home")
    assert ex["state"] == "FAILED"
    assert [a["state"] for a in task_run(ex, "attempt")["attempts"]] == ["FAILED", "FAILED"]


def test_retry_on_subflow_starts_a_new_child_execution(tmp_path):
    (tmp_path / "flaky.yml").write_text(FLAKY)
    ex = run_flow("""
id: parent
namespace: company.team
tasks:
  - id: subflow
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: flaky
    wait: true
    transmitFailed: true
    retry:
      type: constant
      maxAttempts: 3
      interval: PT0.1S
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.subflow.outputs.run }}"
""", home=tmp_path / "home", flow_dirs=[tmp_path])
    assert ex["state"] == "SUCCESS", ex
    sub = task_run(ex, "subflow")
    assert [a["state"] for a in sub["attempts"]] == ["FAILED", "FAILED", "SUCCESS"]
    assert sub["outputs"]["outputs"] == {"run": 3} and sub["outputs"]["state"] == "SUCCESS"


def test_subflow_deprecated_outputs_map_is_rendered_in_the_child(tmp_path):
    (tmp_path / "child.yml").write_text("""
id: child
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "hello from {{ flow.id }}"
""")
    ex = run_flow("""
id: parent_old_outputs
namespace: company.team
tasks:
  - id: subflow
    type: io.kestra.core.tasks.flows.Flow
    namespace: company.team
    flowId: child
    wait: true
    outputs:
      greeting: "{{ outputs.hello.value }}"
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.subflow.outputs.greeting }}"
""", home=tmp_path / "home", flow_dirs=[tmp_path])
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "show")["outputs"]["value"] == "hello from child"


def test_count_keeps_the_flows_whose_count_matches(tmp_path):
    home = tmp_path / "home"
    for _ in range(2):
        assert run_flow("id: logs\nnamespace: company.team\ntasks:\n  - {id: l, type: core.Log, message: hi}\n",
                        home=home)["state"] == "SUCCESS"
    ex = run_flow("""
id: executions_count
namespace: company.team
tasks:
  - id: silent
    type: io.kestra.plugin.core.execution.Count
    expression: "{{ count == 0 }}"
    flows:
      - namespace: company.team
        flowId: logs
      - namespace: company.team
        flowId: never_ran
    startDate: "{{ now() | dateAdd(-1, 'DAYS') }}"
  - id: busy
    type: io.kestra.core.tasks.executions.Counts
    expression: "{{ count >= 2 }}"
    namespaces: [company]
    states: [SUCCESS]
    startDate: "{{ now() | dateAdd(-1, 'DAYS') }}"
    endDate: "{{ now() }}"
  - id: for_each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ outputs.silent.results }}"
    tasks:
      - id: alert
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value | jq('.flowId') | first }} has no execution"
""", home=home)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "silent")["outputs"] == {
        "results": [{"namespace": "company.team", "flowId": "never_ran", "count": 0}], "total": 0}
    assert task_run(ex, "busy")["outputs"] == {
        "results": [{"namespace": "company.team", "flowId": "logs", "count": 2}], "total": 2}
    assert task_run(ex, "alert")["outputs"]["value"] == "never_ran has no execution"


def test_deprecated_state_tasks_keep_a_map_between_executions(tmp_path):
    flow = """
id: state_flow
namespace: company.team
tasks:
  - id: get
    type: io.kestra.plugin.core.state.Get
    name: cursor
  - id: set
    type: io.kestra.core.tasks.states.Set
    name: cursor
    data:
      runs: "{{ (outputs.get.data.runs ?? 0) | int + 1 }}"
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: per_value
        type: io.kestra.plugin.core.state.Set
        name: cursor
        data:
          value: "{{ taskrun.value }}"
"""
    home = tmp_path / "home"
    first = run_flow(flow, home=home)
    second = run_flow(flow, home=home)
    assert first["state"] == second["state"] == "SUCCESS", second
    assert task_run(first, "get")["outputs"] == {"data": {}, "count": 0}
    assert task_run(second, "get")["outputs"] == {"data": {"runs": 1}, "count": 1}
    assert task_run(second, "set")["outputs"]["count"] == 1
    ex = run_flow("""
id: state_flow
namespace: company.team
tasks:
  - {id: drop, type: io.kestra.plugin.core.state.Delete, name: cursor}
  - {id: again, type: io.kestra.plugin.core.state.Delete, name: cursor}
  - {id: strict, type: io.kestra.plugin.core.state.Get, name: cursor, errorOnMissing: true}
""", home=home)
    assert ex["state"] == "FAILED"
    assert (task_run(ex, "drop")["outputs"]["deleted"], task_run(ex, "again")["outputs"]["deleted"]) == (True, False)
    assert "no state `cursor`" in task_run(ex, "strict")["error"]


def kestra_doc_flow(flow_id: str) -> str:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "user" / "kestra.md").read_text()
    return next(f for f in re.findall(r"```yaml\n(.*?)```", doc, re.S) if f.startswith(f"id: {flow_id}\n"))


def test_the_kestra_page_retries_example_runs(tmp_path):
    (tmp_path / "flaky.yml").write_text(FLAKY)
    flow = kestra_doc_flow("retries").replace("PT1S", "PT0.1S")
    ex = run_flow(flow, home=tmp_path / "home", flow_dirs=[tmp_path])
    assert ex["state"] == "SUCCESS", ex
    assert [a["state"] for a in task_run(ex, "subflow")["attempts"]] == ["FAILED", "FAILED", "SUCCESS"]


CACHED = """
id: caching
namespace: company.team
inputs:
  - id: day
    type: STRING
    defaults: monday
tasks:
  - id: products
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.day }} at {{ execution.id }}"
    taskCache:
      enabled: true
      ttl: PT1H
  - id: fresh
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.id }}"
"""


def test_task_cache_reuses_outputs_for_the_same_inputs_within_ttl(tmp_path):
    home = tmp_path / "home"
    first = run_flow(CACHED, home=home)
    second = run_flow(CACHED, home=home)
    other = run_flow(CACHED, inputs={"day": "tuesday"}, home=home)
    assert first["state"] == second["state"] == other["state"] == "SUCCESS"
    assert task_run(second, "products")["outputs"] == task_run(first, "products")["outputs"] \
        == {"value": f"monday at {first['id']}"}
    assert task_run(second, "fresh")["outputs"]["value"] == second["id"]
    assert task_run(other, "products")["outputs"]["value"] == f"tuesday at {other['id']}"
    expired = run_flow(CACHED.replace("ttl: PT1H", "ttl: PT0S"), home=home)
    assert task_run(expired, "products")["outputs"]["value"] == f"monday at {expired['id']}"


def test_the_kestra_page_task_cache_example_runs(tmp_path):
    flow = kestra_doc_flow("caching")
    first = run_flow(flow, home=tmp_path / "home")
    second = run_flow(flow, home=tmp_path / "home")
    assert first["state"] == second["state"] == "SUCCESS"
    assert task_run(second, "products")["outputs"]["value"] == f"products of monday, fetched by {first['id']}"


def test_sla_max_duration_fails_a_long_execution_and_labels_it(tmp_path):
    import time

    began = time.time()
    ex = run_flow("""
id: sla_demo
namespace: company.team
sla:
  - id: maxDuration
    type: MAX_DURATION
    behavior: FAIL
    duration: PT0.5S
    labels:
      sla: missed
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT30S
""", home=tmp_path / "home")
    assert time.time() - began < 15
    assert ex["state"] == "FAILED" and ex["labels"]["sla"] == "missed"
    assert ex["error"].startswith("SLA `maxDuration` violated")
    assert task_run(ex, "sleep")["state"] == "KILLED"


def test_sla_max_duration_cancel_and_none(tmp_path):
    flow = """
id: sla_cancel
namespace: company.team
sla:
  - id: slow
    type: MAX_DURATION
    behavior: {behavior}
    duration: PT0.3S
    labels:
      - key: late
        value: "yes"
tasks:
  - {{id: sleep, type: io.kestra.plugin.core.flow.Sleep, duration: PT1S}}
"""
    cancelled = run_flow(flow.format(behavior="CANCEL"), home=tmp_path / "home")
    assert cancelled["state"] == "CANCELLED" and cancelled["labels"]["late"] == "yes"
    noted = run_flow(flow.format(behavior="NONE"), home=tmp_path / "home")
    assert noted["state"] == "SUCCESS" and noted["labels"]["late"] == "yes"


def test_sla_execution_assertion_is_checked_at_the_end(tmp_path):
    flow = """
id: sla_assert
namespace: company.team
inputs:
  - {id: rows, type: INT, defaults: 3}
sla:
  - id: enough_rows
    type: EXECUTION_ASSERTION
    assert: "{{ outputs.count.value | int >= 5 }}"
    behavior: FAIL
    labels:
      sla: rows
tasks:
  - id: count
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.rows }}"
"""
    failed = run_flow(flow, home=tmp_path / "home")
    assert failed["state"] == "FAILED" and failed["labels"]["sla"] == "rows"
    assert "SLA `enough_rows` violated" in failed["error"]
    ok = run_flow(flow, inputs={"rows": 7}, home=tmp_path / "home")
    assert ok["state"] == "SUCCESS" and "sla" not in ok["labels"]


CHECKED = """
id: checked
namespace: company.team
inputs:
  - id: day
    type: STRING
    defaults: monday
checks:
  - condition: "{{ inputs.day != 'sunday' }}"
    message: "no runs on sunday"
    style: ERROR
    behavior: BLOCK_EXECUTION
  - condition: "{{ inputs.day != 'saturday' }}"
    message: "saturday runs fail at once"
    behavior: FAIL_EXECUTION
  - when: "{{ inputs.day != 'friday' }}"
    message: "careful on fridays"
    style: WARNING
    behavior: CREATE_EXECUTION
tasks:
  - id: work
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.day }}"
"""


def test_checks_block_fail_or_warn_before_the_execution(tmp_path):
    import pytest

    from tiercel.flow.inputs import ExecutionBlocked
    from tiercel.testing import execution_logs

    home = tmp_path / "home"
    assert run_flow(CHECKED, home=home)["state"] == "SUCCESS"
    with pytest.raises(ExecutionBlocked, match="no runs on sunday"):
        run_flow(CHECKED, inputs={"day": "sunday"}, home=home)
    failed = run_flow(CHECKED, inputs={"day": "saturday"}, home=home)
    assert failed["state"] == "FAILED" and failed["error"] == "saturday runs fail at once" and failed["taskRuns"] == []
    friday = run_flow(CHECKED, inputs={"day": "friday"}, home=home)
    assert friday["state"] == "SUCCESS"
    assert any(line["message"] == "check: careful on fridays" and line["level"] == "WARN"
               for line in execution_logs(home, friday["id"]))


def test_checks_answer_422_over_http_and_exit_2_on_the_cli(tmp_path):
    import subprocess
    import sys

    from tiercel.testing.harness import TiercelServer

    flow = tmp_path / "checked.yml"
    flow.write_text(CHECKED)
    proc = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "run", str(flow), "-i", "day=sunday"],
                          capture_output=True, text=True, timeout=60, env={**__import__("os").environ,
                                                                            "TIERCEL_HOME": str(tmp_path / "cli")})
    assert proc.returncode == 2 and "no runs on sunday" in proc.stderr
    server = TiercelServer(tmp_path / "home").start()
    try:
        with server.client() as api:
            r = api.post("/api/v1/flows", content=CHECKED, headers={"Content-Type": "application/x-yaml"})
            assert r.status_code == 200, r.text
            r = api.post("/api/v1/executions/company.team/checked", json={"day": "sunday"})
            assert r.status_code == 422 and "no runs on sunday" in r.text
            r = api.post("/api/v1/executions/company.team/checked", json={"day": "monday"}, params={"wait": "true"})
            assert r.status_code == 200 and r.json()["state"] == "SUCCESS"
    finally:
        server.stop()


def test_the_kestra_page_checks_and_sla_example_runs(tmp_path):
    import pytest

    from tiercel.flow.inputs import ExecutionBlocked

    flow = kestra_doc_flow("nightly_load")
    home = tmp_path / "home"
    assert run_flow(flow, home=home)["state"] == "SUCCESS"
    assert run_flow(flow, inputs={"day": "holiday"}, home=home)["state"] == "CANCELLED"
    with pytest.raises(ExecutionBlocked, match="No loads on Sunday"):
        run_flow(flow, inputs={"day": "sunday"}, home=home)


RETRY_NEW = """
id: retry_new_execution
namespace: company.team
tasks:
  - id: seen
    type: io.kestra.plugin.core.kv.Get
    key: "{{ flow.id }}"
  - id: count
    type: io.kestra.plugin.core.kv.Set
    key: "{{ flow.id }}"
    value: "{{ (outputs.seen.value ?? 0) | int + 1 }}"
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ (outputs.seen.value ?? 0) | int < FAILS }}"
    retry:
      type: constant
      interval: PT0.2S
      maxAttempts: 3
      behavior: CREATE_NEW_EXECUTION
"""


def test_retry_create_new_execution_marks_the_old_one_retried(tmp_path):
    import time

    from tiercel.testing.harness import TiercelServer

    server = TiercelServer(tmp_path / "home").start()
    try:
        with server.client() as api:
            for flow_id, fails in (("recovers", 2), ("gives_up", 9)):
                source = RETRY_NEW.replace("retry_new_execution", flow_id).replace("FAILS", str(fails))
                assert api.post("/api/v1/flows", content=source,
                                headers={"Content-Type": "application/x-yaml"}).status_code == 200
                first = api.post(f"/api/v1/executions/company.team/{flow_id}", params={"wait": "true"}).json()
                assert first["state"] == "RETRIED"
                deadline = time.monotonic() + 20
                while True:
                    found = api.get("/api/v1/executions/search", params={"flowId": flow_id, "size": 10}).json()["results"]
                    states = sorted(e["state"] for e in found)
                    if len(found) == 3 and all(s in ("RETRIED", "SUCCESS", "FAILED") for s in states):
                        break
                    assert time.monotonic() < deadline, states
                    time.sleep(0.1)
                expected = ["RETRIED", "RETRIED", "SUCCESS"] if fails == 2 else ["FAILED", "RETRIED", "RETRIED"]
                assert states == expected
                time.sleep(0.5)  # no fourth execution: maxAttempts counts across executions
                assert api.get("/api/v1/executions/search", params={"flowId": flow_id}).json()["total"] == 3
    finally:
        server.stop()




def test_working_directory_cache_restores_files_between_executions(tmp_path):
    import pytest

    from tiercel.plugins import load_registry
    from tiercel.testing import read_file

    if load_registry().get("task", "scripts.Shell") is None:
        pytest.skip("needs the tiercel-scripts plugin")
    home = tmp_path / "home"

    def installed(ex):
        assert ex["state"] == "SUCCESS", ex
        return read_file(task_run(ex, "working_dir")["outputs"]["outputFiles"]["deps/installed.txt"], home).decode().strip()

    flow = kestra_doc_flow("caching_files")
    first = run_flow(flow, home=home)
    assert installed(first) == first["id"]
    second = run_flow(flow, home=home)
    assert installed(second) == first["id"]  # restored from the cache, not built again
    expired = run_flow(flow.replace("PT1H", "PT0S"), home=home)
    assert installed(expired) == expired["id"]


def test_a_flowable_waiting_to_retry_is_killed_with_its_execution(tmp_path):
    import asyncio

    async def soon():
        await asyncio.sleep(0.8)

    ex = run_flow("""
id: retry_then_kill
namespace: company.team
tasks:
  - id: attempt
    type: io.kestra.plugin.core.flow.Sequential
    retry: {type: constant, interval: PT30S, maxAttempts: 5}
    tasks:
      - {id: boom, type: io.kestra.plugin.core.execution.Fail}
  - {id: never, type: io.kestra.plugin.core.log.Log, message: never}
""", home=tmp_path / "home", kill_when=soon, timeout=20)
    assert ex["state"] == "KILLED"
    assert task_run(ex, "attempt")["state"] == "KILLED"
    assert not runs(ex, "never")


def test_retry_on_a_flowable_inside_a_loop_retries_each_iteration(tmp_path):
    ex = run_flow("""
id: retry_in_loop
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: attempt
        type: io.kestra.plugin.core.flow.Sequential
        retry: {type: constant, interval: PT0.05S, maxAttempts: 3}
        tasks:
          - id: seen
            type: io.kestra.plugin.core.kv.Get
            key: "n_{{ taskrun.value }}"
          - id: count
            type: io.kestra.plugin.core.kv.Set
            key: "n_{{ taskrun.value }}"
            value: "{{ (outputs.seen[taskrun.value].value ?? 0) | int + 1 }}"
          - id: fail_once
            type: io.kestra.plugin.core.execution.Fail
            condition: "{{ (outputs.seen[taskrun.value].value ?? 0) | int < 1 }}"
""", home=tmp_path / "home")
    assert ex["state"] == "SUCCESS", ex
    attempts = [[a["state"] for a in tr["attempts"]] for tr in runs(ex, "attempt")]
    assert attempts == [["FAILED", "SUCCESS"], ["FAILED", "SUCCESS"]]
