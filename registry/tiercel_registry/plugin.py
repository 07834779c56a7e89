"""tiercel-registry as a Tiercel plugin: it contributes the `tiercel registry` command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiercel import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_commands(register: Callable[[Any], None]) -> None:
    from tiercel_registry.cli import registry

    register(registry)
