"""Tasks of {{ cookiecutter.__dist }}. When run() is called, every property is already rendered and validated."""

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from tiercel import Example, RunContext, Task

FLOWS = Path(__file__).parent / "flows"


class Greet(Task):
    """Greet someone: log a greeting and return it as the output `greeting`."""

    type: ClassVar[str] = "{{ cookiecutter.plugin_name }}.Greet"
    examples: ClassVar[list[Example]] = [Example("Greet the world", (FLOWS / "greet.yaml").read_text())]

    name: str = Field("world", description="Who to greet.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        greeting = f"Hello, {self.name}!"
        ctx.logger.info(greeting)
        return {"greeting": greeting}
