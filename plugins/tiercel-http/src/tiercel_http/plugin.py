"""Entry point of tiercel-http: registers http.Request, http.Download and http.Trigger."""

from __future__ import annotations

from collections.abc import Callable

from tiercel import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_http.components import Download, Request

    register(Request)
    register(Download)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel_http.components import Trigger

    register(Trigger)
