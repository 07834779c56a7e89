"""Kestra core tasks Tiercel lacked: storage files, Assert, TemplatedTask, LocalFiles, Loop, conditions."""

from __future__ import annotations

import pytest

from tiercel.testing import execution_logs, read_file
from tiercel.testing.harness import run_flow, task_run


def run(tmp_path, body: str, **kw):
    return run_flow("id: tasks\nnamespace: company.team\n" + body, home=tmp_path / "home", **kw)


def text(tmp_path, uri):
    return read_file(uri, tmp_path / "home").decode()


def test_storage_tasks_chain(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: w, type: io.kestra.plugin.core.storage.Write, content: "3\\n1\\n3\\n2\\n", extension: .txt}
  - {id: size, type: io.kestra.plugin.core.storage.Size, uri: "{{ outputs.w.uri }}"}
  - {id: rev, type: io.kestra.plugin.core.storage.Reverse, from: "{{ outputs.w.uri }}"}
  - {id: split, type: io.kestra.plugin.core.storage.Split, from: "{{ outputs.w.uri }}", rows: 3}
  - {id: cat, type: io.kestra.plugin.core.storage.Concat, files: "{{ outputs.split.uris }}"}
  - {id: keep, type: io.kestra.plugin.core.storage.FilterItems, from: "{{ outputs.w.uri }}", filterCondition: "{{ value > 1 }}"}
  - id: drop
    type: io.kestra.plugin.core.storage.FilterItems
    from: "{{ outputs.w.uri }}"
    filterCondition: "{{ value == 3 }}"
    filterType: EXCLUDE
  - {id: dedup, type: io.kestra.plugin.core.storage.DeduplicateItems, from: "{{ outputs.w.uri }}", expr: "{{ value }}"}
  - {id: gone, type: io.kestra.plugin.core.storage.Delete, uri: "{{ outputs.rev.uri }}"}
  - {id: again, type: io.kestra.plugin.core.storage.Delete, uri: "{{ outputs.rev.uri }}"}
""")
    assert ex["state"] == "SUCCESS"
    out = {tr["taskId"]: tr["outputs"] for tr in ex["taskRuns"]}
    assert out["w"]["uri"].endswith(".txt") and out["size"]["size"] == 8
    assert len(out["split"]["uris"]) == 2 and text(tmp_path, out["cat"]["uri"]) == "3\n1\n3\n2\n"
    assert text(tmp_path, out["keep"]["uri"]) == "3\n3\n2\n" and out["keep"]["droppedItemsTotal"] == 1
    assert text(tmp_path, out["drop"]["uri"]) == "1\n2\n"
    assert text(tmp_path, out["dedup"]["uri"]) == "1\n3\n2\n" and out["dedup"]["numKeys"] == 3
    assert (out["gone"]["deleted"], out["again"]["deleted"]) == (True, False)


def test_purge_current_execution_files_and_local_files(tmp_path):
    ex = run(tmp_path, """
tasks:
  - id: files
    type: io.kestra.core.tasks.storages.LocalFiles
    inputs: {data/a.txt: hello}
    outputs: ["data/*.txt"]
  - {id: purge, type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles}
""")
    assert ex["state"] == "SUCCESS"
    uri = task_run(ex, "files")["outputs"]["uris"]["data/a.txt"]
    assert task_run(ex, "purge")["outputs"]["uris"] == [uri]


def test_assert_fails_naming_each_condition(tmp_path):
    ex = run(tmp_path, """
inputs:
  - {id: n, type: INT, defaults: 5}
tasks:
  - {id: ok, type: io.kestra.plugin.core.execution.Assert, conditions: ["{{ inputs.n > 0 }}"]}
  - id: check
    type: io.kestra.plugin.core.execution.Assert
    conditions: ["{{ inputs.n > 10 }}", "{{ inputs.n < 100 }}", "{{ inputs.n == 7 }}"]
    errorMessage: "bad n: {{ inputs.n }}"
""")
    assert ex["state"] == "FAILED"
    assert task_run(ex, "ok")["state"] == "SUCCESS"
    assert task_run(ex, "check")["error"] == "bad n: 5"
    logged = [line["message"] for line in execution_logs(tmp_path / "home", ex["id"], task_id="check")]
    assert any("{{ inputs.n > 10 }}" in m for m in logged) and any("{{ inputs.n == 7 }}" in m for m in logged)


def test_templated_task(tmp_path):
    ex = run(tmp_path, """
inputs:
  - {id: kind, type: STRING, defaults: core.Return}
tasks:
  - id: templated
    type: io.kestra.plugin.core.templating.TemplatedTask
    spec: |
      type: {{ inputs.kind }}
      format: "{{ 6 * 7 }}"
  - id: flowable
    type: io.kestra.plugin.core.templating.TemplatedTask
    spec: |
      type: core.Sequential
      tasks: []
""")
    assert task_run(ex, "templated")["outputs"] == {"value": "42"}
    assert "cannot be templated" in task_run(ex, "flowable")["error"]


def test_loop_over_a_map_a_list_and_a_file(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: lines, type: core.storage.Write, content: "x\\ny\\n"}
  - id: over_map
    type: io.kestra.plugin.core.flow.Loop
    values: {eu: Paris, us: Boston}
    concurrencyLimit: 0
    tasks:
      - id: nested
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - {id: city, type: io.kestra.plugin.core.debug.Return, format: "{{ item.index }}:{{ item.key }}={{ item.value }}"}
  - id: over_list
    type: io.kestra.plugin.core.flow.Loop
    values: '[{"n": 1}, {"n": 2}]'
    tasks:
      - {id: n, type: io.kestra.plugin.core.debug.Return, format: "{{ item.value.n * 10 }}"}
  - id: over_file
    type: io.kestra.plugin.core.flow.Loop
    values: "{{ outputs.lines.uri }}"
    tasks:
      - {id: line, type: io.kestra.plugin.core.debug.Return, format: "{{ item.value }}"}
  - {id: after, type: io.kestra.plugin.core.debug.Return, format: "{{ outputs.n['1'].value }}"}
""")
    assert ex["state"] == "SUCCESS"

    def values(task_id):
        return [tr["outputs"]["value"] for tr in ex["taskRuns"] if tr["taskId"] == task_id]

    assert sorted(values("city")) == ["0:eu=Paris", "1:us=Boston"]
    assert values("n") == ["10", "20"] and values("line") == ["x", "y"] and values("after") == ["20"]


def test_trigger_toggle(tmp_path):
    source = tmp_path / "toggled.yml"
    source.write_text("""\
id: toggled
namespace: company.team
tasks:
  - {id: disable, type: io.kestra.plugin.core.trigger.Toggle, trigger: nightly}
  - {id: unknown, type: core.trigger.Toggle, trigger: nope}
triggers:
  - {id: nightly, type: core.Schedule, cron: "0 2 * * *"}
""")
    ex = run_flow(source, home=tmp_path / "home")
    assert task_run(ex, "disable")["state"] == "SUCCESS"
    assert "has no trigger `nope` (triggers: nightly)" in task_run(ex, "unknown")["error"]
    from tiercel.backend import Stores

    stores = Stores.open(tmp_path / "home" / "tiercel.db")
    try:
        assert stores.triggers.disabled_keys() == {("company.team", "toggled", "nightly")}
    finally:
        stores.close()


@pytest.mark.parametrize("state", ["SUCCESS", "WARNING", "FAILED", "KILLED"])
def test_exit_ends_the_execution_in_its_state(tmp_path, state):
    ex = run(tmp_path, f"""
tasks:
  - {{id: first, type: io.kestra.plugin.core.log.Log, message: hi}}
  - id: branch
    type: io.kestra.plugin.core.flow.If
    condition: "{{{{ true }}}}"
    then:
      - {{id: stop, type: io.kestra.plugin.core.execution.Exit, state: {state}}}
      - {{id: never_inner, type: io.kestra.plugin.core.log.Log, message: no}}
  - {{id: never_after, type: io.kestra.plugin.core.log.Log, message: no}}
errors:
  - {{id: never_handler, type: io.kestra.plugin.core.log.Log, message: no}}
""")
    assert ex["state"] == state
    assert [tr["taskId"] for tr in ex["taskRuns"]] == ["first", "branch", "stop"]


def test_set_and_unset_variables(tmp_path):
    ex = run(tmp_path, """
variables: {env: dev, token: secret-ish}
tasks:
  - {id: set, type: io.kestra.plugin.core.execution.SetVariables, variables: {env: prod, n: "{{ 1 + 1 }}"}}
  - {id: show, type: io.kestra.plugin.core.debug.Return, format: "{{ vars.env }} {{ vars.n }} {{ vars.token }}"}
  - {id: unset, type: io.kestra.plugin.core.execution.UnsetVariables, variables: [token]}
  - {id: after, type: io.kestra.plugin.core.debug.Return, format: "{{ vars.token ?? 'gone' }} {{ vars.env }}"}
  - {id: refused, type: io.kestra.plugin.core.execution.SetVariables, variables: {env: x}, overwrite: false}
""")
    assert task_run(ex, "show")["outputs"]["value"] == "prod 2 secret-ish"
    assert task_run(ex, "after")["outputs"]["value"] == "gone prod"
    assert ex["state"] == "FAILED" and "already set" in task_run(ex, "refused")["error"]


def test_log_fetch_writes_the_lines_to_a_file(tmp_path):
    import json

    ex = run(tmp_path, """
tasks:
  - {id: careful, type: io.kestra.plugin.core.log.Log, level: WARN, message: disk almost full}
  - {id: fine, type: io.kestra.plugin.core.log.Log, message: fine}
  - {id: fetch, type: io.kestra.plugin.core.log.Fetch, level: WARN}
  - {id: only_fine, type: io.kestra.plugin.core.log.Fetch, tasksId: [fine]}
  - {id: elsewhere, type: io.kestra.plugin.core.log.Fetch, executionId: nope}
""")
    fetched = task_run(ex, "fetch")["outputs"]
    lines = [json.loads(line) for line in text(tmp_path, fetched["uri"]).splitlines()]
    assert fetched["size"] == 1 and (lines[0]["taskId"], lines[0]["message"]) == ("careful", "disk almost full")
    assert task_run(ex, "only_fine")["outputs"]["size"] == 1
    assert "execution `nope` does not exist" in task_run(ex, "elsewhere")["error"]


def test_purge_logs_by_level_and_namespace(tmp_path):
    ex = run(tmp_path, """
tasks:
  - {id: noisy, type: io.kestra.plugin.core.log.Log, level: DEBUG, message: debug line}
  - {id: kept, type: io.kestra.plugin.core.log.Log, message: info line}
  - id: purge
    type: io.kestra.plugin.core.log.PurgeLogs
    endDate: "{{ now() }}"
    namespace: company
    logLevels: [DEBUG]
  - {id: other_namespace, type: io.kestra.plugin.core.log.PurgeLogs, endDate: "{{ now() }}", namespace: elsewhere}
""")
    assert task_run(ex, "purge")["outputs"] == {"count": 1}
    assert task_run(ex, "other_namespace")["outputs"] == {"count": 0}
    assert [line["message"] for line in execution_logs(tmp_path / "home", ex["id"], task_id="kept")] == ["info line"]
    assert execution_logs(tmp_path / "home", ex["id"], task_id="noisy") == []
