"""The topology of a flow as nodes, edges and clusters, built from the flow model (the UI only lays it out).

Built on the server, like Kestra's ``/flows/graph``, so every flowable (a plugin's too) is drawn
from what the model says it holds (:func:`tiercel.flow.iter_children`) and the shape is tested
in pytest. A flowable is a cluster: its own node first, one branch per child block (``then``,
``else``, ``cases.<key>``, ``errors``…) or per child for :class:`~tiercel.core.flowable.Parallel`,
``dependsOn`` edges for a Dag, and a closing node its branches join. On an execution each task
node carries the state of its task runs.

Shape: ``{"nodes": [{uid, kind, taskId, type, cluster}], "edges": [{source, target, label}],
"clusters": [{uid, taskId, type, parent, nodes}]}`` where ``kind`` is ``start``/``end`` (the
flow's), ``task``, ``flowable`` (a cluster's head) or ``join`` (a cluster's end).
"""

from __future__ import annotations

from typing import Any

from tiercel.flow import iter_children
from tiercel.model import ACTIVE, State


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.clusters: list[dict[str, Any]] = []
        self._members: dict[str | None, list[str]] = {}

    def node(self, uid: str, kind: str, cluster: str | None, task: Any = None) -> str:
        self.nodes.append(
            {
                "uid": uid,
                "kind": kind,
                "taskId": task.id if task is not None else None,
                "type": task.type if task is not None else None,
                "cluster": cluster,
            }
        )
        self._members.setdefault(cluster, []).append(uid)
        return uid

    def edge(self, sources: list[str], target: str, label: str | None = None) -> None:
        for source in sources:
            self.edges.append({"source": source, "target": target, "label": label})

    def chain(self, tasks: list[Any], preds: list[str], cluster: str | None, label: str | None = None) -> list[str]:
        """Tasks one after the other from *preds*; the ids the next node connects from."""
        for task in tasks:
            head = self.task(task, cluster)
            self.edge(preds, head[0], label)
            label, preds = None, head[1]
        return preds

    def task(self, task: Any, cluster: str | None) -> tuple[str, list[str]]:
        """(entry node, exit nodes) of one task, a cluster for a flowable with children."""
        blocks = [(name, children) for name, children in iter_children(task) if children]
        if not blocks:
            uid = self.node(f"task:{task.id}", "task", cluster, task)
            return uid, [uid]
        cid = f"cluster:{task.id}"
        self.clusters.append({"uid": cid, "taskId": task.id, "type": task.type, "parent": cluster})
        head = self.node(f"task:{task.id}", "flowable", cid, task)
        exits: list[str] = []
        if _is_dag(task):
            exits = self._dag(task, head, cid)
        elif _is_parallel(task):
            for name, children in blocks:
                for child in children:
                    exits += self.chain([child], [head], cid, None if name == "tasks" else name)
        else:
            for name, children in blocks:
                exits += self.chain(children, [head], cid, None if name == "tasks" and len(blocks) == 1 else name)
        join = self.node(f"join:{task.id}", "join", cid)
        self.edge(exits, join)
        return head, [join]

    def _dag(self, task: Any, head: str, cid: str) -> list[str]:
        ends: dict[str, list[str]] = {}
        entries: dict[str, str] = {}
        for item in task.tasks:
            entries[item.task.id], ends[item.task.id] = self.task(item.task, cid)
        depended = set()
        for item in task.tasks:
            deps = [d for d in item.dependsOn or [] if d in ends]
            depended.update(deps)
            self.edge([e for d in deps for e in ends[d]] or [head], entries[item.task.id])
        return [e for tid, es in ends.items() if tid not in depended for e in es]

    def result(self) -> dict[str, Any]:
        for c in self.clusters:
            c["nodes"] = self._members.get(c["uid"], [])
        return {"nodes": self.nodes, "edges": self.edges, "clusters": self.clusters}


def _is_parallel(task: Any) -> bool:
    from tiercel.core.flowable import Parallel

    return isinstance(task, Parallel)


def _is_dag(task: Any) -> bool:
    from tiercel.core.flowable import Dag

    return isinstance(task, Dag)


def flow_graph(flow: Any) -> dict[str, Any]:
    """The graph of *flow*: ``tasks`` from start to end, ``finally`` after them, ``errors`` and
    ``afterExecution`` as their own labelled branches."""
    b = _Builder()
    start = b.node("root:start", "start", None)
    end_preds = b.chain(flow.tasks, [start], None)
    if flow.finally_:
        end_preds = b.chain(flow.finally_, end_preds, None, "finally")
    if flow.errors:
        end_preds = [*end_preds, *b.chain(flow.errors, [start], None, "errors")]
    if flow.afterExecution:
        end_preds = b.chain(flow.afterExecution, end_preds, None, "afterExecution")
    end = b.node("root:end", "end", None)
    b.edge(end_preds, end)
    return b.result()


def execution_graph(flow: Any, execution: dict[str, Any]) -> dict[str, Any]:
    """The flow's graph with each task node's ``state`` (running first, then the worst ended one)
    and ``runs`` (how many task runs it had: a ForEach body runs once per value)."""
    graph = flow_graph(flow)
    runs: dict[str, list[str]] = {}
    for tr in execution.get("taskRuns", []):
        runs.setdefault(tr["taskId"], []).append(tr["state"])
    for node in graph["nodes"]:
        states = runs.get(node["taskId"] or "", [])
        node["runs"] = len(states)
        node["state"] = _summary(states)
    graph["state"] = execution.get("state")
    return graph


_RANK = [State.FAILED, State.KILLED, State.WARNING, State.SUCCESS]


def _summary(states: list[str]) -> str | None:
    if not states:
        return None
    active = [s for s in states if s in ACTIVE]
    if active:
        return State.RUNNING if State.RUNNING in active else active[-1]
    for rank in _RANK:
        if rank in states:
            return rank
    return states[-1]
