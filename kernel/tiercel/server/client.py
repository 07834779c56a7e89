"""A small client of the REST API, used by the CLI when ``--server`` or ``TIERCEL_SERVER`` is set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


class ClientError(Exception):
    """The server answered with an error (its message), or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _present(params: dict[str, Any]) -> dict[str, Any]:
    """An absent filter is left out, never sent empty."""
    return {k: v for k, v in params.items() if v not in (None, "", [])}


class Client:
    def __init__(self, url: str, timeout: float = 60.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        if kw.get("params"):
            kw["params"] = _present(kw["params"])
        try:
            r = self.http.request(method, f"/api/v1{path}", **kw)
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach the Tiercel server at {self.url}: {exc}") from None
        if r.status_code >= 400:
            try:
                message = r.json().get("message", r.text)
            except ValueError:
                message = r.text
            raise ClientError(message, r.status_code)
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    # --- flows --------------------------------------------------------------------------
    def deploy(self, namespace: str, flow_id: str, source: str) -> tuple[dict[str, Any], str]:
        """Create or update a flow; returns (flow, "created" | "updated" | "unchanged")."""
        headers = {"Content-Type": "application/x-yaml"}
        try:
            before = self.call("GET", f"/flows/{namespace}/{flow_id}")
        except ClientError as exc:
            if exc.status != 404:
                raise
            return self.call("POST", "/flows", content=source.encode(), headers=headers), "created"
        if before["source"] == source:
            return before, "unchanged"
        return self.call("PUT", f"/flows/{namespace}/{flow_id}", content=source.encode(), headers=headers), "updated"

    def flows(self, namespace: str | None = None) -> list[dict[str, Any]]:
        out, page = [], 1
        while True:
            data = self.call("GET", "/flows/search", params={"namespace": namespace or "", "page": page, "size": 1000})
            out += data["results"]
            if len(out) >= data["total"] or not data["results"]:
                return out
            page += 1

    def flow(self, namespace: str, flow_id: str, revision: int | None = None) -> dict[str, Any]:
        return self.call("GET", f"/flows/{namespace}/{flow_id}", params={"revision": revision} if revision else None)

    def delete_flow(self, namespace: str, flow_id: str) -> None:
        self.call("DELETE", f"/flows/{namespace}/{flow_id}")

    # --- executions -----------------------------------------------------------------------
    def run(self, namespace: str, flow_id: str, inputs: dict[str, Any], labels: dict[str, str] | None = None,
            wait: bool = False, files: dict[str, Any] | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"wait": str(wait).lower(), "labels": [f"{k}:{v}" for k, v in (labels or {}).items()]}
        if files:
            return self.call("POST", f"/executions/{namespace}/{flow_id}", params=params, data=inputs, files=files)
        return self.call("POST", f"/executions/{namespace}/{flow_id}", params=params, json=inputs)

    def execution(self, execution_id: str) -> dict[str, Any]:
        return self.call("GET", f"/executions/{execution_id}")

    def search(self, namespace: str | None = None, flow_id: str | None = None, states: list[str] | None = None,
               size: int = 25, page: int = 1) -> dict[str, Any]:
        params = {"namespace": namespace or "", "flowId": flow_id or "", "state": states or [], "size": size, "page": page}
        return self.call("GET", "/executions/search", params=params)

    def command(self, execution_id: str, kind: str, **params: Any) -> Any:
        if kind == "kill":
            return self.call("DELETE", f"/executions/{execution_id}/kill")
        if kind == "resume":
            return self.call("POST", f"/executions/{execution_id}/resume", json=params.get("inputs") or {})
        return self.call("POST", f"/executions/{execution_id}/{kind}",
                         params={k: v for k, v in params.items() if v is not None})

    def logs(self, execution_id: str, task_id: str | None = None, level: str | None = None,
             after: int = 0) -> list[dict[str, Any]]:
        return self.call("GET", f"/logs/{execution_id}", params={"taskId": task_id, "minLevel": level, "after": after})

    def follow_logs(self, execution_id: str, task_id: str | None = None, level: str | None = None) -> Iterator[dict]:
        """Log entries as the server streams them (server-sent events), until the execution ends."""
        yield from self._events(f"/logs/{execution_id}/follow", "log", {"taskId": task_id, "minLevel": level})

    def follow_execution(self, execution_id: str) -> Iterator[dict]:
        """The execution's JSON each time it changes (server-sent events), until it ends."""
        yield from self._events(f"/executions/{execution_id}/follow", "execution", {})

    def _events(self, path: str, kind: str, params: dict[str, Any]) -> Iterator[dict]:
        import httpx

        try:
            with self.http.stream("GET", f"/api/v1{path}", params=_present(params), timeout=None) as r:
                if r.status_code >= 400:
                    r.read()
                    raise ClientError(r.json().get("message", r.text), r.status_code)
                event = None
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == kind:
                        yield json.loads(line[6:])
        except httpx.TransportError as exc:
            raise ClientError(f"lost the Tiercel server at {self.url}: {exc}") from None

    # --- triggers -------------------------------------------------------------------------
    def triggers(self, namespace: str | None = None, flow_id: str | None = None) -> list[dict[str, Any]]:
        data = self.call("GET", "/triggers/search", params={"namespace": namespace or "", "flowId": flow_id or "",
                                                            "size": 1000})
        return data["results"]

    def trigger_action(self, namespace: str, flow_id: str, trigger_id: str, action: str,
                       body: dict[str, Any] | None = None) -> dict[str, Any]:
        path = f"/triggers/{namespace}/{flow_id}/{trigger_id}"
        if action == "backfill/cancel":
            return self.call("DELETE", f"{path}/backfill")
        return self.call("POST", f"{path}/{action}", json=body) if body is not None else self.call("POST", f"{path}/{action}")
