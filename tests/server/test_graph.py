"""The flow topology the UI draws: built on the server from the flow model (tiercel.server.graph)
and served by /api/v1/flows/graph, /flows/{ns}/{id}/graph and /executions/{id}/graph."""

from __future__ import annotations

import textwrap

import pytest

from tiercel.flow import load_flow
from tiercel.server.graph import execution_graph, flow_graph


def graph_of(tasks: str, extra: str = "") -> dict:
    source = "id: g\nnamespace: t\ntasks:\n" + textwrap.indent(textwrap.dedent(tasks), "  ") + textwrap.dedent(extra)
    return flow_graph(load_flow(source))


def edges(graph: dict) -> set[tuple[str, str, str | None]]:
    return {(e["source"], e["target"], e["label"]) for e in graph["edges"]}


def cluster(graph: dict, task_id: str) -> dict:
    return next(c for c in graph["clusters"] if c["taskId"] == task_id)


LOG = "{type: core.Log, message: x}"


def test_plain_tasks_run_in_order_from_start_to_end():
    g = graph_of(f"- {{id: a, {LOG[1:]}\n- {{id: b, {LOG[1:]}\n")
    assert [n["uid"] for n in g["nodes"]] == ["root:start", "task:a", "task:b", "root:end"]
    assert edges(g) == {("root:start", "task:a", None), ("task:a", "task:b", None), ("task:b", "root:end", None)}
    assert g["clusters"] == []


def test_sequential_is_a_cluster_whose_children_chain_to_its_join():
    g = graph_of(f"""\
        - id: seq
          type: core.Sequential
          tasks:
            - {{id: a, {LOG[1:]}
            - {{id: b, {LOG[1:]}
        """)
    assert cluster(g, "seq")["nodes"] == ["task:seq", "task:a", "task:b", "join:seq"]
    assert {
        ("task:seq", "task:a", None),
        ("task:a", "task:b", None),
        ("task:b", "join:seq", None),
        ("join:seq", "root:end", None),
    } <= edges(g)


@pytest.mark.parametrize("kind", ["core.Parallel", "io.kestra.plugin.core.flow.Parallel"])
def test_parallel_children_are_branches_side_by_side(kind):
    g = graph_of(f"""\
        - id: par
          type: {kind}
          tasks:
            - {{id: a, {LOG[1:]}
            - {{id: b, {LOG[1:]}
        """)
    assert {
        ("task:par", "task:a", None),
        ("task:par", "task:b", None),
        ("task:a", "join:par", None),
        ("task:b", "join:par", None),
    } <= edges(g)
    assert ("task:a", "task:b", None) not in edges(g)


def test_if_and_switch_branches_are_labelled():
    g = graph_of(f"""\
        - id: cond
          type: core.If
          condition: "{{{{ true }}}}"
          then: [{{id: t, {LOG[1:]}]
          else: [{{id: e, {LOG[1:]}]
        - id: sw
          type: core.Switch
          value: x
          cases:
            x: [{{id: cx, {LOG[1:]}]
            y: [{{id: cy, {LOG[1:]}]
          defaults: [{{id: cd, {LOG[1:]}]
        """)
    assert {
        ("task:cond", "task:t", "then"),
        ("task:cond", "task:e", "else"),
        ("join:cond", "task:sw", None),
        ("task:sw", "task:cx", "cases.x"),
        ("task:sw", "task:cy", "cases.y"),
        ("task:sw", "task:cd", "defaults"),
    } <= edges(g)


@pytest.mark.parametrize("kind", ["core.ForEach", "core.EachParallel", "core.AllowFailure"])
def test_loops_and_wrappers_hold_their_body(kind):
    values = ", values: [1, 2]" if kind != "core.AllowFailure" else ""
    g = graph_of(f"- {{id: loop, type: {kind}{values}, tasks: [{{id: body, {LOG[1:]}]}}\n")
    assert cluster(g, "loop")["nodes"] == ["task:loop", "task:body", "join:loop"]
    assert {("task:loop", "task:body", None), ("task:body", "join:loop", None)} <= edges(g)


def test_dag_edges_follow_depends_on():
    g = graph_of(f"""\
        - id: dag
          type: core.Dag
          tasks:
            - task: {{id: a, {LOG[1:]}
            - task: {{id: b, {LOG[1:]}
              dependsOn: [a]
            - task: {{id: c, {LOG[1:]}
              dependsOn: [a]
        """)
    assert {
        ("task:dag", "task:a", None),
        ("task:a", "task:b", None),
        ("task:a", "task:c", None),
        ("task:b", "join:dag", None),
        ("task:c", "join:dag", None),
    } <= edges(g)
    assert ("task:a", "join:dag", None) not in edges(g)


def test_nested_clusters_name_their_parent():
    g = graph_of(f"""\
        - id: outer
          type: core.Parallel
          tasks:
            - id: inner
              type: core.Sequential
              tasks: [{{id: leaf, {LOG[1:]}]
        """)
    assert cluster(g, "inner")["parent"] == "cluster:outer"
    assert cluster(g, "outer")["parent"] is None
    assert next(n for n in g["nodes"] if n["uid"] == "task:leaf")["cluster"] == "cluster:inner"


def test_errors_branch_from_start_and_finally_runs_after_the_tasks():
    g = graph_of(f"- {{id: a, {LOG[1:]}\n", f"errors:\n  - {{id: oops, {LOG[1:]}\nfinally:\n  - {{id: fin, {LOG[1:]}\n")
    assert {
        ("root:start", "task:oops", "errors"),
        ("task:a", "task:fin", "finally"),
        ("task:fin", "root:end", None),
        ("task:oops", "root:end", None),
    } <= edges(g)


def test_execution_graph_gives_each_task_its_state_and_run_count():
    flow = load_flow(
        f"id: g\nnamespace: t\ntasks:\n  - id: loop\n    type: core.ForEach\n    values: [1, 2]\n"
        f"    tasks: [{{id: body, {LOG[1:]}]\n  - {{id: after, {LOG[1:]}\n"
    )
    runs = [
        {"taskId": "loop", "state": "RUNNING"},
        {"taskId": "body", "state": "SUCCESS"},
        {"taskId": "body", "state": "FAILED"},
    ]
    g = execution_graph(flow, {"state": "RUNNING", "taskRuns": runs})
    nodes = {n["uid"]: n for n in g["nodes"]}
    assert (nodes["task:loop"]["state"], nodes["task:loop"]["runs"]) == ("RUNNING", 1)
    assert (nodes["task:body"]["state"], nodes["task:body"]["runs"]) == ("FAILED", 2)
    assert (nodes["task:after"]["state"], nodes["task:after"]["runs"]) == (None, 0)


# --- over HTTP ---------------------------------------------------------------------------------

FLOW = f"""\
id: shown
namespace: acme.data
tasks:
  - id: par
    type: core.Parallel
    tasks:
      - {{id: a, {LOG[1:]}
      - {{id: b, {LOG[1:]}
"""


def test_graph_endpoints_and_namespaces(api, h):
    r = api.post("/api/v1/flows/graph", content=FLOW, headers={"Content-Type": "application/x-yaml"})
    assert r.status_code == 200, r.text
    assert {n["uid"] for n in r.json()["nodes"]} == {
        "root:start",
        "task:par",
        "task:a",
        "task:b",
        "join:par",
        "root:end",
    }
    bad = api.post(
        "/api/v1/flows/graph",
        content=FLOW.replace("core.Log", "core.Nope"),
        headers={"Content-Type": "application/x-yaml"},
    )
    assert bad.status_code == 200 and bad.json()["nodes"] == [] and "core.Nope" in bad.json()["errors"][0]["message"]

    h.deploy(api, FLOW)
    h.deploy(api, FLOW.replace("id: shown", "id: other").replace("acme.data", "acme"))
    assert api.get("/api/v1/flows/acme.data/shown/graph").json()["clusters"][0]["taskId"] == "par"
    assert api.get("/api/v1/flows/acme.data/nope/graph").status_code == 404
    assert api.get("/api/v1/namespaces").json() == [
        {"namespace": "acme", "flows": 1, "total": 2},
        {"namespace": "acme.data", "flows": 1, "total": 1},
    ]

    first = api.post("/api/v1/executions/acme.data/shown", params={"wait": "true"}, json={}).json()
    second = api.post("/api/v1/executions/acme.data/shown", params={"wait": "true"}, json={}).json()
    latest = api.get("/api/v1/executions/latest", params={"namespace": "acme.data"}).json()
    assert [(e["flowId"], e["id"], e["state"]) for e in latest] == [("shown", second["id"], "SUCCESS")]
    assert first["id"] != second["id"]
    g = api.get(f"/api/v1/executions/{second['id']}/graph").json()
    assert {n["taskId"]: n["state"] for n in g["nodes"] if n["taskId"]} == {
        "par": "SUCCESS",
        "a": "SUCCESS",
        "b": "SUCCESS",
    }
    assert api.get("/api/v1/executions/nope/graph").status_code == 404
