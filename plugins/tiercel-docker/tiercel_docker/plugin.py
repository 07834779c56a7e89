"""Entry point of the Docker plugin: registers the runner (docker-py is imported only when it runs)."""

from __future__ import annotations

from collections.abc import Callable

from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_runners(register: Callable[[type], None]) -> None:
    from tiercel_docker.runner import Docker

    register(Docker)
