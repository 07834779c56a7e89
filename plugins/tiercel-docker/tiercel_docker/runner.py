"""``docker.Docker``: run a script task's commands in a container of a pinned image.

The model only declares properties; the work is in :mod:`tiercel_docker._run`, loaded (with
docker-py) when a task first runs, so listing plugins and validating flows stay cheap.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from tiercel import Example, RunContext, Runner, ScriptJob, ScriptResult


class Credentials(BaseModel):
    """Registry credentials used to pull the image."""

    model_config = ConfigDict(extra="forbid")

    registry: str | None = Field(
        None, description="Registry address (`registry.example.com:5000`); Docker Hub when omitted."
    )
    username: str | None = Field(None, description="User name; usually `{{ secret('…') }}`.")
    password: str | None = Field(None, description="Password or token; usually `{{ secret('…') }}`.")
    identityToken: str | None = Field(None, description="OAuth identity token, instead of a password.")
    registryToken: str | None = Field(None, description="Bearer registry token, instead of a password.")
    auth: str | None = Field(None, description="Base64 `user:password`, as in a docker config.json.")


class Cpu(BaseModel):
    """CPU limit of the container."""

    model_config = ConfigDict(extra="forbid")

    cpus: float = Field(gt=0, description="Number of CPUs the container may use (`1.5` is one and a half).")


class Memory(BaseModel):
    """Memory limits of the container."""

    model_config = ConfigDict(extra="forbid")

    memory: str | int = Field(description="Hard limit: bytes, or with a unit (`512MB`, `1GiB`, `256m`).")
    memorySwap: str | int | None = Field(None, description="Memory plus swap limit (`-1`: unlimited swap).")
    memoryReservation: str | int | None = Field(None, description="Soft limit, enforced when memory is short.")


class Docker(Runner):
    """Run script commands in a Docker container: a fresh container per attempt, from a pinned image.

    Input files (and namespace files) are copied into the container's working directory
    (`WORKING_DIR`, `/tiercel/work`) before it starts; output files matching the task's
    `outputFiles` and everything written to `OUTPUT_DIR` are copied back after it ends. Output is
    streamed line by line, stdout and stderr apart. A timeout or a kill stops the container
    (SIGTERM through `docker-init`, then SIGKILL after `killGracePeriod`), so no background
    process outlives the task, and the container is removed (`delete`). A container left by a
    worker that died is found by its labels and removed before the next attempt starts.

    Talks to the engine at `host`, else `DOCKER_HOST`, else the local socket; a rootful Podman
    socket works too. Several commands, or a job without input files, run through `/bin/sh` in the container.
    """

    type: ClassVar[str] = "docker.Docker"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.scripts.runner.docker.Docker",)
    examples: ClassVar[list[Example]] = [
        Example(
            "The same shell task, in a container of a pinned image",
            """\
id: docker_runner_example
namespace: company.team
inputs:
  - {id: image, type: STRING, defaults: "tiercel/busybox:test"}
tasks:
  - id: shell
    type: scripts.Shell
    containerImage: "{{ inputs.image }}"
    taskRunner:
      type: docker.Docker
      networkMode: none
      memory: {memory: 64MB}
    inputFiles:
      data.txt: |
        one
        two
    outputFiles:
      - count.txt
    commands:
      - wc -l < data.txt > count.txt
      - 'echo "::{\\"outputs\\": {\\"lines\\": $(cat count.txt)}}::"'
""",
            run=False,
        ),
    ]

    image: str | None = Field(
        None, description="Image to run (`python:3.12-slim`); a script task's `containerImage` fills it."
    )
    host: str | None = Field(
        None,
        description="Docker engine address (`unix:///var/run/docker.sock`, `tcp://…`); "
        "`DOCKER_HOST` or the local socket when omitted.",
    )
    pullPolicy: Literal["ALWAYS", "IF_NOT_PRESENT", "NEVER"] = Field(
        "IF_NOT_PRESENT",
        description="Pull the image before each run (ALWAYS), only when missing (IF_NOT_PRESENT), or never (NEVER).",
    )
    credentials: Credentials | None = Field(None, description="Registry credentials for the pull.")
    cpu: Cpu | None = Field(None, description="CPU limit: `{cpus: 1.5}`.")
    memory: Memory | None = Field(None, description="Memory limits: `{memory: 512MB}`.")
    user: str | None = Field(
        None, description="User (and group) the commands run as inside the container: `1000:1000`, `nobody`."
    )
    entryPoint: list[str] | None = Field(
        None,
        description="Entry point of the container; by default the image's own is replaced so the commands run as given.",
    )
    networkMode: str | None = Field(
        None,
        description="Docker network mode (`bridge`, `host`, `none`, a network name); the engine's default when omitted.",
    )
    volumes: list[str] | None = Field(
        None,
        description="Extra bind mounts `host_path:container_path[:ro]`. Refused unless the worker sets "
        "`TIERCEL_DOCKER_VOLUMES_ENABLED=true`: a host path gives a flow author the worker's files.",
    )
    delete: bool = Field(True, description="Remove the container once the attempt ends.")
    killGracePeriod: timedelta = Field(
        timedelta(seconds=2), description="Time between SIGTERM and SIGKILL when the container is stopped."
    )

    async def run(self, ctx: RunContext, job: ScriptJob) -> ScriptResult:
        from tiercel_docker._run import run_job

        return await run_job(self, ctx, job)
