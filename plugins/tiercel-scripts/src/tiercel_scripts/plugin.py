"""Entry point of tiercel-scripts: registers scripts.Shell, scripts.Python and scripts.Node."""

from __future__ import annotations

from collections.abc import Callable

from tiercel import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_scripts.tasks import Node, Python, Shell

    for cls in (Shell, Python, Node):
        register(cls)
