"""Entry point of the Kubernetes plugin: registers the runner (lightkube is imported only when it runs)."""

from __future__ import annotations

from collections.abc import Callable

from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_runners(register: Callable[[type], None]) -> None:
    from tiercel_kubernetes.runner import Kubernetes

    register(Kubernetes)
