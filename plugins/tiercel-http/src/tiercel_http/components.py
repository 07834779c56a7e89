"""HTTP components: ``http.Request``, ``http.Download`` and the polling ``http.Trigger``.

They share the request properties (:class:`HttpCall`) and one exchange function
(:mod:`tiercel_http._client`, which imports httpx when a request is first sent).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tiercel import Example, PollingTrigger, RunContext, Task, TaskError, TriggerEvent, truthy

METHODS = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]
Method = Annotated[METHODS, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)]


class Auth(BaseModel):
    """Credentials sent with the request."""

    model_config = ConfigDict(extra="forbid")

    type: Annotated[Literal["BASIC", "BEARER"], BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)] = Field(
        description="`basic` (username and password) or `bearer` (token).")
    username: str | None = Field(None, description="User name for basic authentication.")
    password: str | None = Field(None, description="Password for basic authentication; use `{{ secret('NAME') }}`.")
    token: str | None = Field(None, description="Token for bearer authentication; use `{{ secret('NAME') }}`.")


class Options(BaseModel):
    """How the client behaves: timeouts, redirects, error statuses."""

    model_config = ConfigDict(extra="forbid")

    connectTimeout: timedelta | None = Field(None, description="Longest wait to connect (default PT10S).")
    readTimeout: timedelta | None = Field(None, description="Longest silence while waiting for the response (default PT60S).")
    followRedirects: bool = Field(True, description="Follow 3xx redirects.")
    allowFailed: bool = Field(False, description="Accept a status of 400 or more instead of failing (same as `allowFailed`).")
    auth: Auth | None = Field(None, description="Credentials (Kestra's place for them; same as `auth`).")


class HttpCall(BaseModel):
    """The request properties shared by the HTTP task and trigger types."""

    uri: str = Field(description="The URL to call, `http://` or `https://`.")
    method: Method = Field("GET", description="HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.")
    headers: dict[str, Text] | None = Field(None, description="Request headers.")
    params: dict[str, list[Text] | Text] | None = Field(
        None, description="Query parameters added to `uri` (a list value repeats the parameter).")
    body: Text | None = Field(None, description="Raw request body; a map or list is sent as JSON.")
    formData: dict[str, Any] | None = Field(
        None, description="Form fields, sent URL-encoded; a `tiercel://` value is uploaded as a file (multipart).")
    contentType: str | None = Field(
        None, description="Content-Type of `body` (default: application/json when the body is JSON, else text/plain); "
                          "`multipart/form-data` sends `formData` as multipart.")
    auth: Auth | None = Field(None, description="Basic or bearer authentication.")
    options: Options | None = Field(None, description="Timeouts, redirects and error handling.")
    allowFailed: bool = Field(False, description="Accept a status of 400 or more; by default it fails with the status and "
                                                 "the start of the body.")

    @property
    def failed_allowed(self) -> bool:
        return self.allowFailed or bool(self.options and self.options.allowFailed)


class Request(HttpCall, Task):
    """Send an HTTP request and expose the response.

    Outputs: ``code``, ``headers`` (lower-case names, each a list of values), ``body`` (parsed
    when the response is JSON, else text) and ``length``. A body over 1 MB, or a binary one,
    is stored instead: ``uri`` is its ``tiercel://`` address and ``body`` is empty.
    """

    type: ClassVar[str] = "http.Request"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.http.Request", "io.kestra.plugin.fs.http.Request",
                                          "io.kestra.core.tasks.http.Request")
    examples: ClassVar[list[Example]] = [
        Example("POST JSON with a bearer token and read the answer", """\
id: http_request_example
namespace: company.team
inputs:
  - id: server
    type: STRING
    defaults: https://httpbin.org
  - id: token
    type: STRING
    defaults: demo-token
tasks:
  - id: create
    type: http.Request
    uri: "{{ inputs.server }}/post"
    method: POST
    body: '{"name": "ada"}'
    auth:
      type: bearer
      token: "{{ inputs.token }}"
    options:
      readTimeout: PT30S
  - id: show
    type: core.Log
    message: "{{ outputs.create.code }}: {{ outputs.create.body.json.name }}"
""", run=False),
    ]

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from tiercel_http._client import exchange

        reply = await exchange(ctx, self)
        outputs = {"code": reply.code, "headers": reply.headers, "body": reply.body, "length": reply.length}
        if reply.uri:
            outputs["uri"] = reply.uri
        return outputs


class Download(HttpCall, Task):
    """Download a URL into internal storage, streamed (never held in memory).

    Outputs: ``uri`` (the stored file's ``tiercel://`` address), ``code``, ``length`` (bytes)
    and ``headers``. The file is named after ``Content-Disposition`` or the URL's last segment.
    """

    type: ClassVar[str] = "http.Download"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.http.Download", "io.kestra.plugin.fs.http.Download",
                                          "io.kestra.core.tasks.http.Download")
    examples: ClassVar[list[Example]] = [
        Example("Download a file into internal storage", """\
id: http_download_example
namespace: company.team
inputs:
  - id: server
    type: STRING
    defaults: https://httpbin.org
tasks:
  - id: fetch
    type: http.Download
    uri: "{{ inputs.server }}/robots.txt"
  - id: show
    type: core.Log
    message: "{{ outputs.fetch.length }} bytes stored at {{ outputs.fetch.uri }}"
""", run=False),
    ]

    failOnEmptyResponse: bool = Field(True, description="Fail when the response has no body.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from tiercel_http._client import exchange

        reply = await exchange(ctx, self, store="always",
                               name=lambda headers: _disposition_name(headers) or _file_name(self.uri))
        if reply.length == 0 and self.failOnEmptyResponse:
            raise TaskError(f"{self.uri} answered {reply.code} with an empty body (set `failOnEmptyResponse: false` to accept it)")
        return {"uri": reply.uri, "code": reply.code, "length": reply.length, "headers": reply.headers}


class Trigger(HttpCall, PollingTrigger):
    """Call an endpoint every ``interval``; start an execution when ``responseCondition`` holds.

    The condition sees ``response.statusCode``, ``response.body`` and ``response.headers``.
    The execution gets ``trigger.code``, ``trigger.body``, ``trigger.headers``. An identical
    response (same status and body) starts no second execution: its hash is the event key.
    """

    type: ClassVar[str] = "http.Trigger"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.http.Trigger", "io.kestra.plugin.fs.http.Trigger")
    examples: ClassVar[list[Example]] = [
        Example("Start a flow when a service answers with JSON", """\
id: http_trigger_example
namespace: company.team
tasks:
  - id: announce
    type: core.Log
    message: "the service answered {{ trigger.code }}: {{ trigger.body | toJson }}"
triggers:
  - id: watch
    type: http.Trigger
    uri: https://httpbin.org/json
    interval: PT5M
    responseCondition: "{{ response.statusCode == 200 and response.headers['content-type'][0] == 'application/json' }}"
""", run=False),
    ]

    static_fields: ClassVar[frozenset[str]] = PollingTrigger.static_fields | {"responseCondition"}

    responseCondition: str = Field(
        "{{ response.statusCode < 400 }}",
        description="Expression rendered against each `response` (statusCode, body, headers); a truthy result starts "
                    "an execution.")

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        from tiercel_http._client import exchange

        call = self  # properties arrive rendered (the trigger runtime renders them)
        reply = await exchange(ctx, call.model_copy(update={"allowFailed": True}), name="response")
        response = {"statusCode": reply.code, "body": reply.body if reply.uri is None else reply.uri,
                    "headers": reply.headers}
        if not truthy(ctx.render(self.responseCondition, response=response)):
            ctx.logger.debug("%s answered %s: condition not met", call.uri, reply.code)
            return None
        key = hashlib.sha256(f"{reply.code}\n{reply.digest}".encode()).hexdigest()[:32]
        variables = {"code": reply.code, "body": reply.body, "headers": reply.headers}
        if reply.uri:
            variables["uri"] = reply.uri
        return TriggerEvent(variables=variables, key=key)


def _file_name(uri: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]) or "download"


def _disposition_name(headers: dict[str, list[str]]) -> str | None:
    for value in headers.get("content-disposition", []):
        match = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", value)
        if match:
            return match.group(1).rsplit("/", 1)[-1] or None
    return None
