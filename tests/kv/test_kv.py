"""The key/value store: typed values, TTL, namespaces, the core.kv tasks (and their Kestra names),
kv(), `tiercel kv` and the REST API, and concurrent writers of one key."""

from __future__ import annotations

import json

from tiercel.testing import TiercelServer, run_flow, task_run, tiercel

TYPED = """id: typed
namespace: company.team
tasks:
  - id: s
    type: io.kestra.plugin.core.kv.Set
    key: name
    value: 42
    kvType: STRING
  - id: n
    type: core.kv.Set
    key: count
    value: "41"
    kvType: NUMBER
  - id: b
    type: core.kv.Set
    key: user_flag
    value: "true"
    kvType: BOOLEAN
  - id: d
    type: core.kv.Set
    key: user_day
    value: "2024-05-01"
    kvType: DATE
  - id: j
    type: core.kv.Set
    key: cfg
    value: {"retries": 3}
    kvType: JSON
  - id: other
    type: core.kv.Set
    namespace: company
    key: count
    value: 7
    kvType: NUMBER
  - id: read
    type: core.kv.Get
    key: count
  - id: keys
    type: io.kestra.plugin.core.kv.GetKeys
    prefix: user_
  - id: show
    type: core.Return
    format: "{{ kv('name') ~ '|' ~ (outputs.read.value + 1) ~ '|' ~ kv('user_flag') ~ '|' ~ kv('cfg').retries ~ '|' ~ kv('count', namespace='company') }}"
  - id: drop
    type: core.kv.Delete
    key: name
  - id: missing
    type: core.kv.Get
    key: name
"""


def test_typed_values_tasks_and_the_kv_function(tmp_path):
    ex = run_flow(TYPED, home=tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "show")["outputs"]["value"] == "42|42|true|3|7"
    assert task_run(ex, "keys")["outputs"]["keys"] == ["user_day", "user_flag"]
    assert task_run(ex, "drop")["outputs"]["deleted"] is True
    assert task_run(ex, "missing")["outputs"]["value"] is None
    listed = tiercel("kv", "list", "company.team", "--json", home=tmp_path)
    assert [(e["key"], e["type"]) for e in json.loads(listed.stdout)] == [
        ("cfg", "JSON"),
        ("count", "NUMBER"),
        ("user_day", "DATE"),
        ("user_flag", "BOOLEAN"),
    ]


def test_a_value_of_the_wrong_type_or_an_existing_key_fails_the_task_saying_so(tmp_path):
    ex = run_flow(
        """id: bad
namespace: company.team
tasks:
  - id: when
    type: core.kv.Set
    key: when
    value: "next tuesday"
    kvType: DATETIME
    allowFailure: true
  - id: first
    type: core.kv.Set
    key: lock
    value: a
    overwrite: false
  - id: second
    type: core.kv.Set
    key: lock
    value: b
    overwrite: false
""",
        home=tmp_path,
    )
    assert (
        "key `when`: a DATETIME (ISO-8601, e.g. 2024-05-01T10:00:00Z) was expected, got 'next tuesday'"
        in task_run(ex, "when")["error"]
    )
    assert (
        task_run(ex, "second")["error"]
        == "key `lock` already exists in namespace `company.team` and overwrite is false"
    )


def test_ttl_expires_values_and_purge_removes_them(tmp_path):
    ex = run_flow(
        """id: ttl
namespace: company.team
tasks:
  - id: short
    type: core.kv.Set
    key: tmp_token
    value: abc
    ttl: PT0.05S
  - id: long
    type: core.kv.Set
    key: tmp_keep
    value: def
    ttl: PT1H
  - id: wait
    type: core.Sleep
    duration: PT0.1S
  - id: gone
    type: core.kv.Get
    key: tmp_token
  - id: purge
    type: io.kestra.plugin.core.kv.PurgeKV
  - id: scratch
    type: core.kv.PurgeKV
    keyPattern: "tmp_*"
    expiredOnly: false
""",
        home=tmp_path,
    )
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "gone")["outputs"]["value"] is None
    assert task_run(ex, "purge")["outputs"]["size"] == 1 and task_run(ex, "scratch")["outputs"]["size"] == 1


def test_concurrent_writers_of_one_key_lose_no_successful_write(tmp_path):
    branches = "\n".join(
        f"""      - id: w{i}
        type: core.kv.Set
        key: leader
        value: "writer-{i}"
        overwrite: false
        allowFailure: true"""
        for i in range(16)
    )
    ex = run_flow(
        f"""id: race
namespace: company.team
tasks:
  - id: all
    type: core.Parallel
    tasks:
{branches}
  - id: leader
    type: core.kv.Get
    key: leader
""",
        home=tmp_path,
    )
    won = [tr["taskId"] for tr in ex["taskRuns"] if tr["taskId"].startswith("w") and tr["state"] == "SUCCESS"]
    assert len(won) == 1, ex
    assert task_run(ex, "leader")["outputs"]["value"] == f"writer-{won[0][1:]}"


def test_cli_and_rest_api(tmp_path):
    home = tmp_path / "home"
    assert (
        tiercel("kv", "set", "company.team", "limit", "10", "-t", "NUMBER", "--ttl", "PT1H", home=home).returncode == 0
    )
    bad = tiercel("kv", "set", "company.team", "limit", "ten", "-t", "NUMBER", home=home)
    assert bad.returncode == 1 and "limit: a NUMBER was expected, got 'ten'" in bad.stderr
    server = TiercelServer(home).start()
    try:
        api = server.client()
        base = "/api/v1/namespaces/company.team/kv"
        assert api.get(f"{base}/limit").json() == {"type": "NUMBER", "value": 10}
        put = api.put(f"{base}/cfg", content='{"a": [1, 2]}', headers={"Content-Type": "application/json"})
        assert put.status_code == 200 and put.json()["type"] == "JSON"
        put = api.put(
            f"{base}/day", params={"type": "DATE"}, content='"2024-02-30"', headers={"Content-Type": "application/json"}
        )
        assert put.status_code == 422 and "a DATE (ISO-8601" in put.json()["message"]
        assert [e["key"] for e in api.get(base).json()] == ["cfg", "limit"]
        assert api.delete(f"{base}/cfg").status_code == 204 and api.get(f"{base}/cfg").status_code == 404
    finally:
        server.stop()
    got = tiercel("kv", "get", "company.team", "limit", home=home)
    assert got.stdout.strip() == "10"


def test_the_guide_example_counts_across_runs(tmp_path):
    import re
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "user" / "kv.md").read_text()
    flow = re.search(r"```yaml\n(.*?)```", guide, re.S).group(1)
    logs: list = []
    for _ in range(2):
        assert run_flow(flow, home=tmp_path, logs=logs)["state"] == "SUCCESS"
    assert [m for t, _, m in logs if t == "fetch"] == ["fetching rows after 0", "fetching rows after 100"]
    assert [m for t, _, m in logs if t == "show"] == ["next run starts after 100", "next run starts after 200"]
