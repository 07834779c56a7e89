"""One HTTP exchange for every chat and webhook task (httpx is imported on first use).

Webhook URLs and bot tokens are credentials: nothing here logs or raises them. Errors name the
service, the scheme and host only, and the answer's status and the start of its body.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from tiercel import RunContext, TaskError


def where(url: str) -> str:
    """``scheme://host:port`` of *url*: what may be shown of an address whose path is a secret."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "an invalid URL (it must start with http:// or https://)"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def payload_of(value: str | dict[str, Any] | list[Any] | None, prop: str = "payload") -> Any:
    """A payload given as a map, or as a JSON string (the Kestra way), as a JSON value."""
    if value is None or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise TaskError(
            f"`{prop}` is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            f"give a map, or a JSON string"
        ) from None


async def post(
    ctx: RunContext,
    service: str,
    url: str,
    *,
    json_body: Any = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Any:
    """Send *json_body* to *url*; return the parsed answer (JSON, else text). A 4xx/5xx answer fails."""
    import httpx

    # httpx logs each request's full URL at INFO, httpcore at DEBUG: here the URL is a credential.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    shown = where(url)
    if shown.startswith("an invalid"):
        raise TaskError(f"{service}: the URL is {shown}")
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            response = await client.request(method, url, json=json_body, headers=headers)
    except httpx.TimeoutException:
        raise TaskError(f"{service} at {shown} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise TaskError(f"could not reach {service} at {shown} ({type(exc).__name__})") from None
    text = response.text
    if response.status_code >= 400:
        raise TaskError(f"{service} at {shown} answered {response.status_code} {response.reason_phrase}: {text[:300]}")
    ctx.logger.info("%s accepted the message (%s)", service, response.status_code)
    try:
        return response.json()
    except ValueError:
        return text
