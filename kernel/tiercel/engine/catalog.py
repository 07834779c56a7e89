"""The flows executions run: each source parsed once per process, found by hash, by id, or beside the caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tiercel.backend import Stores
from tiercel.flow.model import Flow
from tiercel.model import Execution


class FlowNotFound(Exception):
    pass


class FlowCatalog:
    def __init__(self, stores: Stores, registry: Any, flow_dirs: list[Path] | None = None) -> None:
        self.stores = stores
        self.registry = registry
        self.flow_dirs = list(flow_dirs or [])
        self._flows: dict[str, Flow] = {}
        self._saved: dict[int, str] = {}  # id(flow) -> hash of a source already saved

    def flow_of(self, ex: Execution) -> Flow:
        """The flow an execution runs (the exact source it started with)."""
        flow = self._flows.get(ex.flow_hash)
        if flow is None:
            from tiercel.flow import load_flow

            found = self.stores.flows.source(ex.flow_hash)
            if found is None:
                raise FlowNotFound(f"the source of flow {ex.namespace}.{ex.flow_id} ({ex.flow_hash}) is missing")
            flow = self._flows[ex.flow_hash] = load_flow(found[0], found[1], registry=self.registry)
        return flow

    def register(self, flow: Flow) -> str:
        """Keep *flow*'s source so executions can be resumed from it; returns its hash (saved once per process)."""
        digest = self._saved.get(id(flow))
        if digest is None or self._flows.get(digest) is not flow:
            digest = self.stores.flows.save_source(flow.source or "", flow.path)
            self._saved[id(flow)] = digest
            self._flows[digest] = flow
        return digest

    def find(self, namespace: str, flow_id: str, revision: int | None = None) -> tuple[Flow, int | None]:
        """A deployed flow, or one sitting in a flow folder of this run."""
        from tiercel.flow import load_flow

        row = self.stores.flows.get(namespace, flow_id, revision)
        if row is not None:
            flow = self._flows.get(row["hash"]) or load_flow(row["source"], None, registry=self.registry)
            self._flows[row["hash"]] = flow
            return flow, row["revision"]
        for folder in self.flow_dirs:
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                try:
                    text = path.read_text()
                except OSError:
                    continue
                if flow_id not in text:
                    continue
                try:
                    flow = load_flow(text, str(path), registry=self.registry)
                except Exception:
                    continue
                if flow.id == flow_id and flow.namespace == namespace:
                    return flow, None
        raise FlowNotFound(f"flow `{namespace}.{flow_id}` not found: deploy it with `tiercel flows deploy DIR` "
                           f"or put it in the same folder as the calling flow")
