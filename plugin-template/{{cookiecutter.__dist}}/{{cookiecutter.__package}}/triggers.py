"""Triggers of {{ cookiecutter.__dist }}: events are committed in `ack`, once their execution exists."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from tiercel import Example, PollingTrigger, RunContext, TriggerEvent

FLOWS = Path(__file__).parent / "flows"


class NewFile(PollingTrigger):
    """Start an execution for each new file in a folder; `trigger.name` and `trigger.path` name the file."""

    type: ClassVar[str] = "{{ cookiecutter.plugin_name }}.NewFile"
    examples: ClassVar[list[Example]] = [Example("Greet each new file", (FLOWS / "new_file.yaml").read_text())]

    folder: str = Field(description="The folder to watch.")

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        seen = ctx.state.get("seen", [])
        for path in sorted(Path(self.folder).glob("*")):
            if path.is_file() and path.name not in seen:

                def ack(name: str = path.name) -> None:  # the position moves only once the execution exists
                    ctx.state["seen"] = [*ctx.state.get("seen", []), name]

                return TriggerEvent({"name": path.name, "path": str(path)}, key=path.name, ack=ack)
        return None
