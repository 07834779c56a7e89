"""The REST API, in Kestra's shape (``/api/v1``), on Starlette.

Every error is a JSON object ``{"message": …}`` with a 4xx status saying what was wrong
(invalid YAML, wrong content type, unknown flow, oversized body); a 500 would be a bug.
The execution JSON is the Runtime's (the one ``tiercel run --json`` prints).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tiercel.api import ScheduleTrigger, StorageError, WebhookTrigger
from tiercel.backend.auth import ROLES
from tiercel.model import TERMINAL, State, new_id
from tiercel.server.auth import RULES, AuditLog, Auth, AuthSettings, allow, check_child_flows, secured, visible
from tiercel.server.guard import OriginPolicy, wrap

log = logging.getLogger("tiercel.server")

#: Body limits (bytes): flow sources, webhook payloads, JSON bodies, multipart uploads.
FLOW_LIMIT = int(os.environ.get("TIERCEL_MAX_FLOW_BYTES", 1 << 20))
WEBHOOK_LIMIT = 10 << 20
JSON_LIMIT = 10 << 20
UPLOAD_LIMIT = 512 << 20
YAML_TYPES = ("application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml")
#: Request headers never copied into ``trigger.headers`` (they would end up stored with the execution).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=str, separators=(",", ":")).encode()


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class Services:
    """What the handlers use: the runtime, the deployed-flow index, the scheduler and trigger runner."""

    def __init__(self, rt: Any, scheduler: Any = None, runner: Any = None, index: Any = None) -> None:
        from tiercel.engine.scheduler import Conditions, FlowIndex

        self.rt = rt
        self.index = index or (scheduler.index if scheduler else FlowIndex(rt))
        self.scheduler = scheduler
        self.runner = runner
        self.store = rt.stores.triggers
        self.notifier = Notifier()
        self.conditions = Conditions(rt)
        rt.listeners.append(self.notifier.on_event)
        self._checked = 0.0
        self._disabled: set[tuple[str, str, str]] = set()
        self.flow_schema: dict[str, Any] | None = None
        self.plugin_list: list[dict[str, Any]] | None = None

    def flows_changed(self, parsed: Any = None) -> None:
        """After a deploy: the index re-reads the flows (*parsed*, the flow just parsed off the loop, is not parsed again)."""
        if parsed is not None:
            self.index.remember(parsed)
        self.index.refresh(force=True)
        self._disabled = self.store.disabled_keys()
        for part in (self.scheduler, self.runner):
            if part is not None:
                part.wake()

    def disabled(self, namespace: str, flow_id: str, trigger_id: str) -> bool:
        """Whether the trigger was disabled through the API (as of the last refresh: at most 0.5 s old)."""
        return (namespace, flow_id, trigger_id) in self._disabled

    def deployed(self, namespace: str, flow_id: str) -> Any:
        """The latest deployed flow, re-reading the flows and triggers tables at most twice a second."""
        if time.monotonic() - self._checked > 0.5:
            self._checked = time.monotonic()
            self.index.refresh()
            self._disabled = self.store.disabled_keys()
        d = self.index.get(namespace, flow_id)
        if d is None:
            raise ApiError(404, f"flow {namespace}.{flow_id} not found")
        return d


class Notifier:
    """Wakes server-sent-event streams when their execution changes or logs.

    Followers of one execution share one serialization of it per change (:meth:`snapshot`),
    made off the event loop: a hundred followers cost what one does.
    """

    def __init__(self) -> None:
        self.waiting: dict[str, set[asyncio.Event]] = {}
        self.versions: dict[str, int] = {}
        self._snapshots: dict[str, tuple[int, asyncio.Task[tuple[str, bool]]]] = {}

    def on_event(self, kind: str, payload: Any) -> None:
        if kind == "execution":
            execution_id = payload.id
        elif kind == "taskrun":
            execution_id = payload[0].id
        else:
            execution_id = payload[0]
        if execution_id in self._snapshots or execution_id in self.waiting:
            self.versions[execution_id] = self.versions.get(execution_id, 0) + 1
        for event in self.waiting.get(execution_id, ()):
            event.set()

    async def snapshot(self, rt: Any, execution_id: str) -> tuple[str, bool]:
        """(execution JSON text, ended) as of the last change, computed once per change for all followers."""
        version = self.versions.get(execution_id, 0)
        cached = self._snapshots.get(execution_id)
        if cached is None or cached[0] != version:

            def serialize() -> tuple[str, bool]:
                data = rt.stores.executions.json(execution_id)
                return json.dumps(data, default=str, separators=(",", ":")), data["state"] in TERMINAL

            cached = (version, asyncio.ensure_future(asyncio.to_thread(serialize)))
            self._snapshots[execution_id] = cached
        try:
            return await asyncio.shield(cached[1])
        finally:
            if not self.waiting.get(execution_id) and self._snapshots.get(execution_id) is cached:
                self._snapshots.pop(execution_id, None)  # nobody follows any more
                self.versions.pop(execution_id, None)

    async def wait(self, execution_id: str, timeout: float) -> None:
        event = asyncio.Event()
        self.waiting.setdefault(execution_id, set()).add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            waiting = self.waiting.get(execution_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self.waiting[execution_id]


# --- request helpers ----------------------------------------------------------------------

def svc(request: Request) -> Services:
    return request.app.state.services


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            if int(length) > limit:
                raise ApiError(413, f"body too large: {int(length)} bytes, at most {limit} accepted")
        except ValueError:
            raise ApiError(400, f"invalid Content-Length header {length!r}") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body too large: more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def yaml_body(request: Request) -> str:
    kind = media_type(request)
    if kind not in YAML_TYPES:
        raise ApiError(415, f"send the flow as YAML with `Content-Type: application/x-yaml` (got {kind or 'none'!r})")
    try:
        body = await read_body(request, FLOW_LIMIT)
    except ApiError as exc:
        if exc.status == 413:
            raise ApiError(413, f"{exc.message}: a flow source this large is refused (TIERCEL_MAX_FLOW_BYTES); "
                                f"split it into subflows") from None
        raise
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the flow source is not valid UTF-8") from None
    if not text.strip():
        raise ApiError(422, "the flow source is empty")
    return text


async def json_object(request: Request, limit: int = JSON_LIMIT, required: bool = False) -> dict[str, Any]:
    body = await read_body(request, limit)
    if not body.strip():
        if required:
            raise ApiError(400, "a JSON object body is required")
        return {}
    if media_type(request) != "application/json":
        raise ApiError(415, f"send a JSON body with `Content-Type: application/json` (got {media_type(request)!r})")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"invalid JSON body: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid JSON body: nested too deep") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"the JSON body must be an object, got {type(data).__name__}")
    return data


def query(request: Request, name: str, default: str | None = None) -> str | None:
    """A single-valued query parameter; given twice is an error, not a silent pick."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise ApiError(400, f"query parameter `{name}` given {len(values)} times; it takes one value")
    return values[0] if values else default


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = query(request, name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,18}", raw):
        raise ApiError(400, f"query parameter `{name}` must be an integer, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, f"query parameter `{name}` must be between {low} and {high}, got {value}")
    return value


def bool_param(request: Request, name: str) -> bool:
    raw = query(request, name)
    if raw is None:
        return False
    raw = raw.lower()
    if raw in ("", "true", "1", "yes"):  # a bare `?wait` means true
        return True
    if raw in ("false", "0", "no"):
        return False
    raise ApiError(400, f"query parameter `{name}` must be true or false, got {raw!r}")


def date_param(request: Request, name: str) -> float | None:
    raw = query(request, name)
    if raw is None:
        return None
    return parse_date(raw, name)


def parse_date(raw: Any, name: str, strict: bool = True) -> float:
    """An RFC 3339 date-time with its offset (a leap second is read as the next second).

    *strict* False (the CLI) also takes a date alone or a local time without offset.
    """
    text = str(raw).strip().upper().replace("Z", "+00:00")
    leap = re.search(r"T\d\d:\d\d:60", text)
    if leap:
        text = text[:leap.end() - 2] + "59" + text[leap.end():]
    full = re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?[+-][0-9]{2}:[0-9]{2}", text)
    try:
        if strict and not full:
            raise ValueError
        value = datetime.fromisoformat(text)
        if leap:
            value = value.replace(microsecond=0) + timedelta(seconds=1)
    except ValueError:
        raise ApiError(400, f"`{name}` must be an RFC 3339 date-time with its offset, such as "
                            f"2026-01-31T02:00:00Z, got {raw!r}") from None
    if value.tzinfo is None:
        value = value.astimezone()
    return value.timestamp()


def labels_param(values: list[str]) -> dict[str, str]:
    labels = {}
    for item in values:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise ApiError(400, f"a label is `key:value`, got {item!r}")
        labels[key] = value
    return labels


def execution_or_404(rt: Any, execution_id: str, request: Request) -> Any:
    """The execution, if the caller may act on its namespace with the route's role."""
    ex = rt.stores.executions.load(execution_id)
    if ex is None:
        raise ApiError(404, f"execution {execution_id} not found")
    allow(request, ex.namespace, f"execution {execution_id} not found")
    return ex


async def parse_flow(rt: Any, text: str) -> Any:
    """The flow in *text*, parsed and validated off the event loop (a large flow takes a while)."""
    from tiercel.flow import FlowValidationError, load_flow

    try:
        return await asyncio.to_thread(load_flow, text, None, registry=rt.registry)
    except FlowValidationError as exc:
        raise ApiError(422, f"invalid flow: {exc.errors[0] if exc.errors else exc}",
                       errors=[e.to_json() for e in exc.errors]) from None
    except Exception as exc:
        raise ApiError(422, f"invalid flow: {exc}") from None


def hides_keys(request: Request, namespace: str) -> bool:
    """Webhook keys are shown only to editors and admins (a key lets anyone start the flow)."""
    return request.state.principal.role_on(namespace) < ROLES.index("editor")


def flow_json(row: dict[str, Any], namespace: str | None = None, flow_id: str | None = None,
              hide_keys: bool = False) -> dict[str, Any]:
    """A deployed flow as the API shows it (its YAML as data, plus revision and source); parses YAML, so
    handlers call it in a thread. *hide_keys* masks webhook keys in the data and the source."""
    import yaml

    try:
        data = yaml.safe_load(row["source"])
    except yaml.YAMLError:
        data = None
    data = data if isinstance(data, dict) else {}
    source = row["source"]
    if hide_keys:
        for trigger in data.get("triggers") or []:
            if isinstance(trigger, dict) and isinstance(trigger.get("key"), str) and trigger["key"]:
                source = source.replace(trigger["key"], "******")
                trigger["key"] = "******"
    data.update({"id": flow_id or row.get("id"), "namespace": namespace or row.get("namespace"),
                 "revision": row["revision"], "updated": iso(row.get("updated")), "deleted": bool(row.get("deleted")),
                 "source": source})
    return data


# --- flows --------------------------------------------------------------------------------

async def create_flow(request: Request) -> Response:
    s = svc(request)
    text = await yaml_body(request)
    flow = await parse_flow(s.rt, text)
    allow(request, flow.namespace)
    check_child_flows(request, flow)
    if s.rt.stores.flows.get(flow.namespace, flow.id) is not None:
        raise ApiError(409, f"flow {flow.namespace}.{flow.id} already exists; update it with "
                            f"PUT /api/v1/flows/{flow.namespace}/{flow.id}")
    s.rt.stores.flows.deploy(flow.namespace, flow.id, text)
    s.flows_changed(flow)
    return Json(await asyncio.to_thread(flow_json, s.rt.stores.flows.get(flow.namespace, flow.id), flow.namespace,
                                        flow.id), status_code=200)


async def update_flow(request: Request) -> Response:
    s = svc(request)
    namespace, flow_id = request.path_params["namespace"], request.path_params["id"]
    allow(request, namespace, f"flow {namespace}.{flow_id} not found")
    text = await yaml_body(request)
    if s.rt.stores.flows.get(namespace, flow_id) is None:
        raise ApiError(404, f"flow {namespace}.{flow_id} not found; create it with POST /api/v1/flows")
    flow = await parse_flow(s.rt, text)
    if (flow.namespace, flow.id) != (namespace, flow_id):
        raise ApiError(422, f"the source declares {flow.namespace}.{flow.id}, not {namespace}.{flow_id}: "
                            f"a flow's namespace and id cannot change")
    check_child_flows(request, flow)
    s.rt.stores.flows.deploy(namespace, flow_id, text)
    s.flows_changed(flow)
    return Json(await asyncio.to_thread(flow_json, s.rt.stores.flows.get(namespace, flow_id), namespace, flow_id))


async def get_flow(request: Request) -> Response:
    s = svc(request)
    namespace, flow_id = request.path_params["namespace"], request.path_params["id"]
    allow(request, namespace, f"flow {namespace}.{flow_id} not found")
    revision = int_param(request, "revision", 0, 1, 10**9) or None
    row = s.rt.stores.flows.get(namespace, flow_id, revision)
    if row is None:
        raise ApiError(404, f"flow {namespace}.{flow_id}{f' revision {revision}' if revision else ''} not found")
    if "yaml" in request.headers.get("accept", ""):
        hide = hides_keys(request, namespace)
        source = (await asyncio.to_thread(flow_json, row, namespace, flow_id, True))["source"] if hide else row["source"]
        return Response(source, media_type="application/x-yaml")
    return Json(await asyncio.to_thread(flow_json, row, namespace, flow_id, hides_keys(request, namespace)))


async def delete_flow(request: Request) -> Response:
    s = svc(request)
    namespace, flow_id = request.path_params["namespace"], request.path_params["id"]
    allow(request, namespace, f"flow {namespace}.{flow_id} not found")
    if not s.rt.stores.flows.delete(namespace, flow_id):
        raise ApiError(404, f"flow {namespace}.{flow_id} not found")
    s.store.delete_flow(namespace, flow_id)  # a flow created again later starts its schedules afresh
    s.flows_changed()
    return Response(status_code=204)


async def flow_revisions(request: Request) -> Response:
    s = svc(request)
    namespace, flow_id = request.path_params["namespace"], request.path_params["id"]
    allow(request, namespace, f"flow {namespace}.{flow_id} not found")
    rows = s.rt.stores.flows.revisions(namespace, flow_id)
    if not rows:
        raise ApiError(404, f"flow {namespace}.{flow_id} not found")
    hide = hides_keys(request, namespace)
    return Json(await asyncio.to_thread(lambda: [flow_json(r, namespace, flow_id, hide) for r in rows]))


async def search_flows(request: Request) -> Response:
    s = svc(request)
    page, size = int_param(request, "page", 1, 1, 10**6), int_param(request, "size", 25, 1, 1000)
    rows = [r for r in s.rt.stores.flows.list(query(request, "namespace") or None, query(request, "q") or None)
            if visible(request, r["namespace"])]
    chunk = rows[(page - 1) * size: page * size]
    hide = {r["namespace"]: hides_keys(request, r["namespace"]) for r in chunk}
    return Json({"results": await asyncio.to_thread(lambda: [flow_json(r, hide_keys=hide[r["namespace"]]) for r in chunk]),
                 "total": len(rows)})


async def namespace_flows(request: Request) -> Response:
    s = svc(request)
    namespace = request.path_params["namespace"]
    allow(request, namespace)
    rows = [r for r in s.rt.stores.flows.list(namespace) if r["namespace"] == namespace]
    hide = hides_keys(request, namespace)
    return Json(await asyncio.to_thread(lambda: [flow_json(r, hide_keys=hide) for r in rows]))


async def validate_flows(request: Request) -> Response:
    """Kestra's validate answer: one entry per YAML document, with the kernel's messages."""
    s = svc(request)
    text = await yaml_body(request)
    return Json(await asyncio.to_thread(_validate_documents, s.rt.registry, text))


def _validate_documents(registry: Any, text: str) -> list[dict[str, Any]]:
    """One Kestra-shaped validation entry per YAML document of *text* (run off the event loop)."""
    import warnings

    from tiercel.flow import FlowValidationError, load_flow

    results = []
    for index, doc in enumerate(_documents(text)):
        entry: dict[str, Any] = {"index": index, "flow": None, "namespace": None, "constraints": None,
                                 "errors": [], "warnings": []}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                flow = load_flow(doc, None, registry=registry)
                entry["flow"], entry["namespace"] = flow.id, flow.namespace
            except FlowValidationError as exc:
                entry["errors"] = [e.to_json() for e in exc.errors]
                entry["constraints"] = str(exc)
            except Exception as exc:
                entry["constraints"] = str(exc)
                entry["errors"] = [{"message": str(exc), "text": str(exc)}]
        entry["warnings"] = [str(w.message) for w in caught]
        results.append(entry)
    return results


def _documents(text: str) -> list[str]:
    docs = [d for d in re.split(r"(?m)^---\s*$", text) if d.strip()]
    return docs or [text]


# --- executions ------------------------------------------------------------------------------

async def create_execution(request: Request) -> Response:
    from tiercel.flow.inputs import ExecutionBlocked, InputError, resolve_inputs

    s = svc(request)
    rt = s.rt
    namespace, flow_id = request.path_params["namespace"], request.path_params["flowId"]
    allow(request, namespace, f"flow {namespace}.{flow_id} not found")
    revision = int_param(request, "revision", 0, 1, 10**9) or None
    if revision:
        row = rt.stores.flows.get(namespace, flow_id, revision)
        if row is None:
            raise ApiError(404, f"flow {namespace}.{flow_id} revision {revision} not found")
        flow = await parse_flow(rt, row["source"])
    else:
        d = s.deployed(namespace, flow_id)
        flow, revision = d.flow, d.revision
    if getattr(flow, "disabled", False):
        raise ApiError(409, f"flow {namespace}.{flow_id} is disabled")
    labels = labels_param(request.query_params.getlist("labels"))
    timeout = _timeout(request)
    execution_id = new_id()
    raw = await _inputs(request, rt, flow, execution_id)
    try:
        inputs = resolve_inputs(flow, raw)
        ex = rt.new_execution(flow, inputs, labels=labels, revision=revision, execution_id=execution_id)
    except ExecutionBlocked as exc:
        raise ApiError(422, f"execution blocked by the flow's checks: {exc}", errors=exc.problems) from None
    except InputError as exc:
        raise ApiError(422, f"invalid inputs: {exc}", errors=exc.problems) from None
    rt.submit(ex)
    if bool_param(request, "wait"):
        await _wait(rt, ex.id, timeout)
    return Json(rt.stores.executions.json(ex.id))


async def _inputs(request: Request, rt: Any, flow: Any, execution_id: str) -> dict[str, Any]:
    """Inputs from a JSON object or multipart form data (FILE inputs uploaded to storage)."""
    kind = media_type(request)
    file_inputs = {spec.id for spec in flow.inputs if str(spec.type).upper() == "FILE"}
    if kind == "multipart/form-data":
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > UPLOAD_LIMIT:
            raise ApiError(413, f"body too large: {length} bytes, at most {UPLOAD_LIMIT} accepted")
        try:
            form = await request.form(max_part_size=JSON_LIMIT)
        except Exception as exc:
            raise ApiError(400, f"invalid form body: {exc}") from None
        raw: dict[str, Any] = {}
        try:
            for name, value in form.multi_items():
                if hasattr(value, "filename") and hasattr(value, "file"):
                    try:
                        uri = rt.storage.input_uri(flow.namespace, flow.id, execution_id, name, value.filename or name)
                        rt.storage.put(uri, value.file)
                    except StorageError as exc:
                        raise ApiError(400, f"file part `{name}`: {exc}") from None
                    raw[name] = uri
                else:
                    raw[name] = value
        finally:
            await form.close()
    else:
        raw = await json_object(request)
    for name in file_inputs:
        value = raw.get(name)
        if isinstance(value, str) and not value.startswith("tiercel://"):
            raise ApiError(422, f"input `{name}` is a FILE: upload it as a multipart file part named `{name}` "
                                f"(or pass a tiercel:// URI)")
    return raw


def _timeout(request: Request) -> int:
    """``?timeout=`` seconds to wait for the end (300 by default); parsed before anything starts."""
    return int_param(request, "timeout", 300, 1, 3600)


async def _wait(rt: Any, execution_id: str, timeout: float) -> None:
    """Wait for the end, at most *timeout* seconds; the caller answers the state then."""
    try:
        await asyncio.wait_for(rt.wait(execution_id), timeout)
    except TimeoutError:
        pass


async def get_execution(request: Request) -> Response:
    s = svc(request)
    return Json(s.rt.stores.metrics.attach(execution_or_404(s.rt, request.path_params["executionId"], request).to_json()))


async def search_executions(request: Request) -> Response:
    s = svc(request)
    q = request.query_params
    states = q.getlist("state")
    unknown = [x for x in states if x not in _STATES]
    if unknown:
        raise ApiError(400, f"unknown state {unknown[0]!r}; states are {', '.join(sorted(_STATES))} (repeat `state` "
                            f"for several)")
    rows, total = s.rt.stores.executions.search(
        query(request, "namespace") or None, query(request, "flowId") or None, states or None,
        labels_param(q.getlist("labels")) or None,
        date_param(request, "startDate"), date_param(request, "endDate"),
        int_param(request, "page", 1, 1, 10**6), int_param(request, "size", 25, 1, 1000),
        scopes=request.state.principal.scopes())
    return Json({"results": rows, "total": total})


_STATES = {s.value for s in State} - {State.LOST}  # LOST is an attempt's, never an execution's


async def kill_execution(request: Request) -> Response:
    s = svc(request)
    ex = execution_or_404(s.rt, request.path_params["executionId"], request)
    if ex.terminal:
        raise ApiError(409, f"execution {ex.id} already ended {ex.state}")
    s.rt.command(ex.id, "kill")
    return Json({"id": ex.id, "message": "kill requested"}, status_code=202)


async def restart_execution(request: Request) -> Response:
    s = svc(request)
    ex = execution_or_404(s.rt, request.path_params["executionId"], request)
    if not ex.terminal and ex.state != "PAUSED":
        raise ApiError(409, f"execution {ex.id} is still {ex.state}; restart applies to ended or paused executions")
    if ex.state == "SUCCESS":
        raise ApiError(409, f"execution {ex.id} succeeded: nothing to restart (use replay)")
    timeout = _timeout(request)
    s.rt.restart(ex.id)
    if bool_param(request, "wait"):
        await asyncio.sleep(0)
        await _wait(s.rt, ex.id, timeout)
    return Json(s.rt.stores.executions.json(ex.id))


async def replay_execution(request: Request) -> Response:
    from tiercel.engine.replay import replay_execution as replay

    s = svc(request)
    ex = execution_or_404(s.rt, request.path_params["executionId"], request)
    timeout = _timeout(request)
    from_task = query(request, "taskId") or None
    task_run_id = query(request, "taskRunId")
    if task_run_id:
        tr = ex.task_runs.get(task_run_id)
        if tr is None:
            raise ApiError(404, f"execution {ex.id} has no task run {task_run_id}")
        from_task = tr.task_id
    try:
        new = replay(s.rt, ex.id, from_task)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    if bool_param(request, "wait"):
        await _wait(s.rt, new.id, timeout)
    return Json(s.rt.stores.executions.json(new.id))


async def resume_execution(request: Request) -> Response:
    s = svc(request)
    ex = execution_or_404(s.rt, request.path_params["executionId"], request)
    if ex.state != "PAUSED" and not any(tr.state == "PAUSED" for tr in ex.task_runs.values()):
        raise ApiError(409, f"execution {ex.id} is {ex.state}, not paused")
    if media_type(request) == "multipart/form-data":
        try:
            form = await request.form(max_part_size=JSON_LIMIT)
        except Exception as exc:
            raise ApiError(400, f"invalid form body: {exc}") from None
        inputs = {}
        try:
            for name, value in form.multi_items():
                if hasattr(value, "filename") and hasattr(value, "file"):  # an onResume FILE input
                    uri = s.rt.storage.input_uri(ex.namespace, ex.flow_id, ex.id, name, value.filename or name)
                    s.rt.storage.put(uri, value.file)
                    inputs[name] = uri
                else:
                    inputs[name] = value
        finally:
            await form.close()
    else:
        inputs = await json_object(request)
    s.rt.command(ex.id, "resume", {"inputs": inputs})
    return Json({"id": ex.id, "message": "resume requested"}, status_code=202)


async def follow_execution(request: Request) -> Response:
    """Server-sent events: the execution JSON each time it changes, until it ends."""
    s = svc(request)
    execution_id = request.path_params["executionId"]
    execution_or_404(s.rt, execution_id, request)

    async def events() -> AsyncIterator[str]:
        last = None
        s.notifier.waiting.setdefault(execution_id, set())  # counted as a follower from the start
        while True:
            text, ended = await s.notifier.snapshot(s.rt, execution_id)
            if text != last:
                last = text
                yield f"event: execution\ndata: {text}\n\n"
            if ended:
                yield "event: end\ndata: {}\n\n"
                return
            await s.notifier.wait(execution_id, 0.5)
            await asyncio.sleep(FOLLOW_COALESCE)  # changes in the meantime go out as one event

    return StreamingResponse(events(), media_type="text/event-stream", headers=_SSE_HEADERS)


#: Seconds a follower waits after a change for more changes, sent together (a busy execution changes
#: many times a second; each follower gets its whole JSON at most this often).
FOLLOW_COALESCE = 0.1
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# --- logs -------------------------------------------------------------------------------------

def _log_filters(request: Request) -> tuple[str | None, str | None]:
    level = query(request, "minLevel") or None  # sent empty means not set
    if level is not None and level not in LEVELS:
        raise ApiError(400, f"minLevel must be one of {', '.join(LEVELS)}, got {level!r}")
    return query(request, "taskId") or None, level


async def execution_logs(request: Request) -> Response:
    s = svc(request)
    execution_id = request.path_params["executionId"]
    execution_or_404(s.rt, execution_id, request)
    task_id, level = _log_filters(request)
    after = int_param(request, "after", 0, 0, 2**62)
    return Json(s.rt.stores.logs.query(execution_id, after, task_id, level))


async def follow_logs(request: Request) -> Response:
    """Server-sent events: each log line as it is written, until the execution ends."""
    s = svc(request)
    execution_id = request.path_params["executionId"]
    execution_or_404(s.rt, execution_id, request)
    task_id, level = _log_filters(request)

    async def events() -> AsyncIterator[str]:
        after = 0
        while True:
            ended = s.rt.stores.executions.state(execution_id) in TERMINAL
            for entry in s.rt.stores.logs.query(execution_id, after, task_id, level):
                after = entry["id"]
                yield f"id: {after}\nevent: log\ndata: {json.dumps(entry, default=str)}\n\n"
            if ended:
                yield "event: end\ndata: {}\n\n"
                return
            await s.notifier.wait(execution_id, 0.5)

    return StreamingResponse(events(), media_type="text/event-stream", headers=_SSE_HEADERS)


# --- webhooks ---------------------------------------------------------------------------------

async def webhook(request: Request) -> Response:
    """``/executions/webhook/{namespace}/{flowId}/{key}``: start the flow; with ``wait: true`` answer its outputs."""
    from tiercel.engine.scheduler import start_execution, trigger_disabled

    s = svc(request)
    rt = s.rt
    namespace, flow_id, key = (request.path_params[k] for k in ("namespace", "flowId", "key"))
    timeout = _timeout(request)
    auth, client = request.app.state.auth, request.client.host if request.client else "-"
    auth.check_throttle("webhook", client)
    try:
        d = s.deployed(namespace, flow_id)
    except ApiError:
        auth.throttle.failed("webhook", client)
        raise ApiError(404, "webhook not found: no such flow or key") from None
    trigger = None
    for t in d.flow.triggers:
        if isinstance(t, WebhookTrigger):
            expected = t.key
            if "{{" in expected:
                try:
                    expected = str(rt.renderer.render(expected, {"flow": {"id": d.id, "namespace": d.namespace},
                                                                 "vars": d.flow.variables or {},
                                                                 "secret": lambda name: rt.secrets.read(name, namespace)}))
                except Exception as exc:  # told to the server's log, never to the caller
                    log.error("%s.%s: webhook trigger `%s`: its key cannot be rendered: %s", namespace, flow_id, t.id, exc)
                    continue
            if hmac.compare_digest(expected.encode(), key.encode()):
                trigger = t
    if trigger is None:
        auth.throttle.failed("webhook", client)
        raise ApiError(404, "webhook not found: no such flow or key")
    if trigger_disabled(d, trigger, {"disabled": s.disabled(namespace, flow_id, trigger.id)}):
        raise ApiError(409, f"webhook trigger `{trigger.id}` of {namespace}.{flow_id} is disabled")
    body = await read_body(request, WEBHOOK_LIMIT)
    text = body.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse: the text itself
        parsed = text
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        if name.lower() not in SECRET_HEADERS:
            headers.setdefault(name.lower(), []).append(value)
    parameters: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        parameters.setdefault(name, []).append(value)
    variables = {"body": parsed, "headers": headers, "parameters": parameters}
    if not s.conditions.check_all(trigger.conditions or [], variables):
        return Response(status_code=204)  # Kestra's answer when conditions block the call
    idempotency = request.headers.get("idempotency-key")
    ex = start_execution(rt, d, trigger, variables, key=f"idempotency:{idempotency}" if idempotency else None)
    if ex is None:
        from tiercel.engine.delivery import dedupe_key

        found = rt.stores.executions.id_for_dedupe_key(dedupe_key(d.flow, trigger, f"idempotency:{idempotency}"))
        return Json(rt.stores.executions.json(found) if found else {"message": "duplicate"})
    if trigger.wait:
        await _wait(rt, ex.id, timeout)
        final = rt.stores.executions.load(ex.id)
        if getattr(trigger, "returnOutputs", False) and final.terminal:
            return _outputs_response(final.outputs or {}, getattr(trigger, "responseContentType", None))
        return Json({"id": final.id, "namespace": final.namespace, "flowId": final.flow_id, "state": final.state,
                     "outputs": final.outputs or {}, "error": final.error},
                    status_code=200 if final.terminal else 202)
    return Json({"id": ex.id, "namespace": ex.namespace, "flowId": ex.flow_id, "state": ex.state,
                 "trigger": ex.trigger, "labels": ex.labels})


def _outputs_response(outputs: dict[str, Any], content_type: str | None) -> Response:
    """A webhook's answer with the execution's outputs alone: JSON, or one output as text."""
    kind = content_type or "application/json"
    if "json" in kind:
        return Response(json.dumps(outputs, separators=(",", ":"), default=str), media_type=kind)
    body = next(iter(outputs.values())) if len(outputs) == 1 else outputs
    return Response(body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), default=str),
                    media_type=kind)


# --- triggers ---------------------------------------------------------------------------------

def _trigger_list(s: Services, namespace: str | None = None, flow_id: str | None = None) -> list[dict[str, Any]]:
    from tiercel.engine.scheduler import describe_trigger

    s.index.refresh()
    rows = s.store.all(namespace, flow_id)
    out = []
    for d in s.index.all():
        if namespace and not (d.namespace == namespace or d.namespace.startswith(namespace + ".")):
            continue
        if flow_id and d.id != flow_id:
            continue
        for t in d.flow.triggers:
            item = describe_trigger(d, t, rows.get((d.namespace, d.id, t.id)))
            health = s.runner.health.get((d.namespace, d.id, t.id)) if s.runner else None
            if health is not None:
                item["health"] = health.to_json()
            out.append(item)
    return out


async def search_triggers(request: Request) -> Response:
    s = svc(request)
    page, size = int_param(request, "page", 1, 1, 10**6), int_param(request, "size", 25, 1, 1000)
    items = [t for t in _trigger_list(s, query(request, "namespace") or None, query(request, "flowId") or None)
             if visible(request, t["namespace"])]
    return Json({"results": items[(page - 1) * size: page * size], "total": len(items)})


async def flow_triggers(request: Request) -> Response:
    s = svc(request)
    namespace, flow_id = request.path_params["namespace"], request.path_params["flowId"]
    allow(request, namespace, f"flow {namespace}.{flow_id} not found")
    s.deployed(namespace, flow_id)
    return Json([t for t in _trigger_list(s, namespace, flow_id) if t["namespace"] == namespace])


def _trigger(s: Services, request: Request) -> tuple[Any, Any]:
    namespace, flow_id, trigger_id = (request.path_params[k] for k in ("namespace", "flowId", "triggerId"))
    allow(request, namespace, f"flow {namespace}.{flow_id} not found")
    s.index.refresh()
    d = s.deployed(namespace, flow_id)
    for t in d.flow.triggers:
        if t.id == trigger_id:
            return d, t
    raise ApiError(404, f"flow {namespace}.{flow_id} has no trigger `{trigger_id}`")


def _one(s: Services, d: Any, t: Any) -> dict[str, Any]:
    return next(x for x in _trigger_list(s, d.namespace, d.id) if x["triggerId"] == t.id and x["namespace"] == d.namespace)


async def set_trigger_enabled(request: Request) -> Response:
    s = svc(request)
    d, t = _trigger(s, request)
    disabled = request.url.path.endswith("/disable")
    s.store.set_disabled(d.namespace, d.id, t.id, type(t).type, disabled)
    s.flows_changed()
    return Json(_one(s, d, t))


async def backfill(request: Request) -> Response:
    s = svc(request)
    d, t = _trigger(s, request)
    if not isinstance(t, ScheduleTrigger):
        raise ApiError(422, f"trigger `{t.id}` is a {type(t).type}: only schedule triggers (such as core.Schedule) "
                            f"can be backfilled")
    if s.scheduler is None:
        raise ApiError(409, "this server runs no scheduler (start `tiercel server` or `tiercel scheduler`)")
    body = await json_object(request, required=True)
    if "start" not in body:
        raise ApiError(422, "a backfill needs `start` (ISO-8601 date-time), and optionally `end`, `inputs`, `labels`")
    start = parse_date(body["start"], "start")
    end = parse_date(body["end"], "end") if body.get("end") else None
    if end is not None and end < start:
        raise ApiError(422, "`end` is before `start`")
    if (end if end is not None else start) > time.time():
        raise ApiError(422, "a backfill covers past dates: `start` and `end` must not be in the future "
                            "(future dates run on schedule)")
    inputs, labels = body.get("inputs") or {}, body.get("labels") or {}
    if not isinstance(inputs, dict) or not isinstance(labels, dict):
        raise ApiError(422, "`inputs` and `labels` must be objects")
    from tiercel.flow.inputs import InputError, resolve_inputs

    try:
        resolve_inputs(d.flow, inputs)  # checked once up front, not once per date later
    except InputError as exc:
        raise ApiError(422, f"invalid inputs: {exc}", errors=exc.problems) from None
    await asyncio.to_thread(s.scheduler.backfill, d, t, start, end, inputs,  # counting dates takes a while
                            {str(k): str(v) for k, v in labels.items()})
    return Json(_one(s, d, t))


async def backfill_action(request: Request) -> Response:
    s = svc(request)
    d, t = _trigger(s, request)
    action = "cancel" if request.method == "DELETE" else request.url.path.rsplit("/", 1)[-1]
    if s.scheduler is None or s.scheduler.set_backfill(d, t, action) is None:
        raise ApiError(404, f"trigger `{t.id}` of {d.namespace}.{d.id} has no backfill in progress")
    return Json(_one(s, d, t))


# --- misc -------------------------------------------------------------------------------------

async def health(request: Request) -> Response:
    from tiercel import __version__

    s = svc(request)
    return Json({"status": "UP", "version": __version__, "workerId": s.rt.process_id,
                 "components": request.app.state.components})


async def cluster_status(request: Request) -> Response:
    """The processes sharing this backend, the job queues and the namespace quotas (`tiercel cluster status`)."""
    from tiercel.engine import cluster

    s = svc(request)
    return Json(cluster.status(s.rt.stores, s.rt.quotas))


async def plugins(request: Request) -> Response:
    """Every installed component with its plugin, version, aliases and documented examples (full flows)."""
    s = svc(request)

    def listing() -> list[dict[str, Any]]:
        return [{"type": c.type, "kind": c.kind, "plugin": c.dist, "version": c.version, "aliases": list(c.aliases),
                 "examples": [{"title": e.title, "flow": e.flow} for e in getattr(c.cls, "examples", None) or []]}
                for c in s.rt.registry.components()]

    if s.plugin_list is None:  # the examples import every plugin's classes: once, off the event loop
        s.plugin_list = await asyncio.to_thread(listing)
    return Json(s.plugin_list)


async def flow_schema(request: Request) -> Response:
    """The JSON Schema of a flow with every installed task and trigger (for editors and the UI)."""
    from tiercel.flow import flow_json_schema

    s = svc(request)
    if s.flow_schema is None:  # plugins are loaded once per process: compute it once (seconds on a busy
        # machine: off the event loop, so the UI's other requests and assets are served meanwhile)
        s.flow_schema = await asyncio.to_thread(flow_json_schema, s.rt.registry)
    return Json(s.flow_schema)


async def openapi(request: Request) -> Response:
    from tiercel.server.openapi import spec

    return Json(spec())


async def docs(request: Request) -> Response:
    from tiercel.server.openapi import DOCS_HTML

    return HTMLResponse(DOCS_HTML)


# --- errors -----------------------------------------------------------------------------------

async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    extra = {k: v for k, v in exc.extra.items() if k != "headers"}
    return Json({"message": exc.message, **extra}, status_code=exc.status, headers=exc.extra.get("headers"))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path} (see /api/v1/openapi.json)"
    elif exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    else:
        message = exc.detail or "error"
    return Json({"message": message}, status_code=exc.status_code, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return Json({"message": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def _known_query(endpoint: Any, names: set[str] | None) -> Any:
    """Reject a query parameter the operation does not take: `?flowid=` must not silently list everything."""
    if names is None:
        return endpoint

    async def checked(request: Request) -> Response:
        for name in request.query_params.keys():
            if name not in names:
                from tiercel.flow.errors import did_you_mean

                hint = did_you_mean(name, names)
                raise ApiError(400, f"unknown query parameter `{name}`" + (f" ({hint})" if hint else "")
                                    + (f"; this endpoint takes {', '.join(sorted(names))}" if names else
                                       "; this endpoint takes none"))
        return await endpoint(request)

    return checked


def _query_names(paths: dict[str, Any], path: str, methods: list[str]) -> set[str] | None:
    """The query parameters the OpenAPI description gives the operation(s); None for webhooks (user data)."""
    if "/webhook/" in path:
        return None
    operations = paths.get(path, {})
    return {p["name"] for m in methods for p in operations.get(m.lower(), {}).get("parameters", []) if p["in"] == "query"}


def _by_method(handlers: dict[str, Any], path: str) -> Any:
    from tiercel.server.observe import ROUTE_KEY

    async def dispatch(request: Request) -> Response:
        request.scope[ROUTE_KEY] = path  # the route template, for the HTTP metrics
        return await handlers["GET" if request.method == "HEAD" else request.method](request)

    return dispatch


def create_app(services: Services, components: list[str] | None = None, policy: OriginPolicy | None = None,
               auth: AuthSettings | None = None) -> Any:
    """The API as an ASGI app, behind the request guard (Host, Origin and body-type checks), each route behind
    its access rule (:mod:`tiercel.server.auth`), state-changing calls recorded in the audit log."""
    from tiercel.server import auth as auth_routes

    p = "/api/v1"
    ex = f"{p}/executions"
    tr = f"{p}/triggers/{{namespace}}/{{flowId}}/{{triggerId}}"
    from tiercel.server import views
    from tiercel.server.ui import ui_routes

    routes = [
        *views.routes(),  # the UI's endpoints (graphs, namespaces) before the `{namespace}`/`{executionId}` ones
        Route(f"{p}/health", health, methods=["GET"]),
        Route(f"{p}/openapi.json", openapi, methods=["GET"]),
        Route(f"{p}/docs", docs, methods=["GET"]),
        Route(f"{p}/auth/login", auth_routes.login, methods=["POST"]),
        Route(f"{p}/auth/logout", auth_routes.logout, methods=["POST"]),
        Route(f"{p}/auth/me", auth_routes.me, methods=["GET"]),
        Route(f"{p}/audit", auth_routes.audit, methods=["GET"]),
        Route(f"{p}/auth/tokens", auth_routes.list_tokens, methods=["GET"]),
        Route(f"{p}/auth/tokens", auth_routes.create_token, methods=["POST"]),
        Route(f"{p}/auth/tokens/{{tokenId}}", auth_routes.revoke_token, methods=["DELETE"]),
        Route(f"{p}/cluster", cluster_status, methods=["GET"]),
        Route(f"{p}/plugins", plugins, methods=["GET"]),
        Route(f"{p}/plugins/schemas/flow", flow_schema, methods=["GET"]),
        Route(f"{p}/flows", create_flow, methods=["POST"]),
        Route(f"{p}/flows/validate", validate_flows, methods=["POST"]),
        Route(f"{p}/flows/search", search_flows, methods=["GET"]),
        Route(f"{p}/flows/{{namespace}}", namespace_flows, methods=["GET"]),
        Route(f"{p}/flows/{{namespace}}/{{id}}", get_flow, methods=["GET"]),
        Route(f"{p}/flows/{{namespace}}/{{id}}", update_flow, methods=["PUT"]),
        Route(f"{p}/flows/{{namespace}}/{{id}}", delete_flow, methods=["DELETE"]),
        Route(f"{p}/flows/{{namespace}}/{{id}}/revisions", flow_revisions, methods=["GET"]),
        Route(f"{ex}/search", search_executions, methods=["GET"]),
        Route(f"{ex}/webhook/{{namespace}}/{{flowId}}/{{key}}", webhook, methods=["GET", "POST", "PUT"]),
        Route(f"{ex}/{{executionId}}/kill", kill_execution, methods=["DELETE", "POST"]),
        Route(f"{ex}/{{executionId}}/restart", restart_execution, methods=["POST"]),
        Route(f"{ex}/{{executionId}}/replay", replay_execution, methods=["POST"]),
        Route(f"{ex}/{{executionId}}/resume", resume_execution, methods=["POST"]),
        Route(f"{ex}/{{executionId}}/follow", follow_execution, methods=["GET"]),
        Route(f"{ex}/{{namespace}}/{{flowId}}", create_execution, methods=["POST"]),
        Route(f"{ex}/{{executionId}}", get_execution, methods=["GET"]),
        Route(f"{p}/logs/{{executionId}}", execution_logs, methods=["GET"]),
        Route(f"{p}/logs/{{executionId}}/follow", follow_logs, methods=["GET"]),
        Route(f"{p}/triggers/search", search_triggers, methods=["GET"]),
        Route(f"{p}/triggers/{{namespace}}/{{flowId}}", flow_triggers, methods=["GET"]),
        Route(f"{tr}/backfill", backfill, methods=["POST"]),
        Route(f"{tr}/backfill", backfill_action, methods=["DELETE"]),
        Route(f"{tr}/backfill/pause", backfill_action, methods=["POST"]),
        Route(f"{tr}/backfill/unpause", backfill_action, methods=["POST"]),
        Route(f"{tr}/enable", set_trigger_enabled, methods=["POST"]),
        Route(f"{tr}/disable", set_trigger_enabled, methods=["POST"]),
    ]
    from tiercel.server import namespaces
    from tiercel.server.openapi import spec

    routes += namespaces.routes(p)
    from tiercel.server import observe

    routes += [Route(path, handler, methods=["GET"]) for path, handler in observe.routes()]

    paths = spec()["paths"]
    by_path: dict[str, dict[str, Any]] = {}  # one route per path, so a 405 lists every method in `Allow`
    for r in routes:
        for method in sorted((r.methods or set()) - {"HEAD"}):
            if (method, r.path) not in RULES:
                raise RuntimeError(f"route {method} {r.path} has no access rule in tiercel.server.auth.RULES")
            endpoint = _known_query(r.endpoint, _query_names(paths, r.path, [method]))
            by_path.setdefault(r.path, {})[method] = secured(endpoint, RULES[(method, r.path)])
    pages = ui_routes()  # the UI's pages and assets: public; what they show comes from the API
    app = Starlette(routes=[*(Route(path, _by_method(handlers, path), methods=sorted(handlers))
                              for path, handlers in by_path.items()), *pages],
                    exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: server_error})
    app.state.services = services
    app.state.components = components or []
    app.state.auth = Auth(auth or AuthSettings(), services.rt.stores.auth)
    return observe.HttpMetrics(wrap(AuditLog(app, services.rt.stores.auth), policy or OriginPolicy.of("127.0.0.1")))
