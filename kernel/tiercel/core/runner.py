"""The process runner: script commands as local subprocesses, each in its own process group.

The machinery lives in ``_process`` and loads on first use, so listing plugins stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from tiercel.api import Example, RunContext, Runner, ScriptJob, ScriptResult


class Process(Runner):
    """Run script commands as processes on the worker's host.

    Each command is a subprocess in its own process group, started in a fresh working
    directory (``WORKING_DIR``) that holds the input files; files matching the output globs,
    and everything written to ``OUTPUT_DIR``, come back as output files. Output is streamed
    line by line as it comes. A timeout or a kill stops the whole process group (SIGTERM,
    then SIGKILL), so no background child outlives the task. Each command's process group is
    tracked with the attempt: if the worker dies, the next attempt kills it before starting.
    """

    type: ClassVar[str] = "core.Process"
    on_worker_host: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.runner.Process", "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner")
    examples: ClassVar[list[Example]] = [
        Example("A shell script on the worker's host (requires the tiercel-scripts plugin)", """\
id: process_runner_example
namespace: company.team
tasks:
  - id: shell
    type: scripts.Shell
    taskRunner:
      type: core.Process
    outputFiles:
      - out.txt
    commands:
      - echo "working in $WORKING_DIR"
      - echo hello > out.txt
""", run=False),
    ]

    async def run(self, ctx: RunContext, job: ScriptJob) -> ScriptResult:
        from tiercel.core._process import TRACK_KEY, kill_leftovers, run_job

        for pgid in kill_leftovers(ctx.leftovers):
            ctx.logger.warning("killed process group %d left running by an earlier attempt", pgid)
        return await run_job(Path(ctx.working_dir), job, lambda group: ctx.track(TRACK_KEY, group))
