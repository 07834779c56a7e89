"""``ssh.SSH``: run a script task's commands on a remote host over SSH.

The model only declares properties; the work is in :mod:`tiercel_ssh._run`, loaded (with
asyncssh) when a task first runs, so listing plugins and validating flows stay cheap.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from pydantic import Field, model_validator

from tiercel import Example, RunContext, Runner, ScriptJob, ScriptResult


class SSH(Runner):
    """Run script commands on a remote host over SSH, in a fresh remote working directory.

    Input files (and namespace files) are uploaded over SFTP into a per-attempt directory under
    `remoteDir` (`WORKING_DIR`); files matching `outputFiles`, and everything written to
    `OUTPUT_DIR`, are downloaded afterwards, and the directory is removed. Output is streamed
    line by line, stdout and stderr apart. The commands run as one remote process group: a
    timeout or a kill sends it SIGTERM, then SIGKILL after `killGracePeriod`, so no background
    process outlives the task. A connection dropped mid-run fails the attempt (retry it with
    the task's `retry`). The host key is checked against `knownHosts` (or the worker's
    `~/.ssh/known_hosts`) unless `strictHostKeyChecking: false`.

    The remote side needs a POSIX `sh`, `mkdir`, `find`, `rm` and `kill`, as any Unix host has.
    """

    type: ClassVar[str] = "ssh.SSH"
    examples: ClassVar[list[Example]] = [
        Example(
            "The same shell task, on a remote host",
            """\
id: ssh_runner_example
namespace: company.team
inputs:
  - {id: host, type: STRING, defaults: build.example.com}
tasks:
  - id: shell
    type: scripts.Shell
    taskRunner:
      type: ssh.SSH
      host: "{{ inputs.host }}"
      username: deploy
      privateKey: "{{ secret('SSH_KEY') }}"
    outputFiles:
      - uname.txt
    commands:
      - uname -a > uname.txt
""",
            run=False,
        ),
    ]

    host: str = Field(description="Host name or address of the remote machine.")
    port: int = Field(22, ge=1, le=65535, description="SSH port.")
    username: str = Field(description="User the commands run as.")
    password: str | None = Field(None, description="Password, usually `{{ secret('…') }}`; prefer `privateKey`.")
    privateKey: str | None = Field(None, description="Private key in PEM/OpenSSH text, usually `{{ secret('…') }}`.")
    privateKeyPassphrase: str | None = Field(None, description="Passphrase of `privateKey`, if it has one.")
    knownHosts: str | None = Field(
        None, description="known_hosts lines trusted for this host; the worker's `~/.ssh/known_hosts` when omitted."
    )
    strictHostKeyChecking: bool = Field(
        True, description="Verify the host key. `false` accepts any key: anyone on the path can then read the session."
    )
    remoteDir: str = Field(
        "/tmp", description="Remote directory under which each attempt gets its own working directory."
    )
    connectTimeout: timedelta = Field(
        timedelta(seconds=15), description="How long to wait for the connection and login."
    )
    killGracePeriod: timedelta = Field(
        timedelta(seconds=2), description="Time between SIGTERM and SIGKILL when the commands are stopped."
    )

    @model_validator(mode="after")
    def _one_credential(self) -> SSH:
        if self.password is None and self.privateKey is None:
            raise ValueError("set `privateKey` (PEM text, usually {{ secret('…') }}) or `password`")
        return self

    async def run(self, ctx: RunContext, job: ScriptJob) -> ScriptResult:
        from tiercel_ssh._run import run_job

        return await run_job(self, ctx, job)
