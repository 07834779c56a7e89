"""Running the git command for a task: credentials, cancellation, and errors without secrets.

Passwords and passphrases reach git and ssh through an askpass script that reads them from the
child's environment; a private key is written to a 0600 file in a temporary directory removed after
the run. Nothing of them reaches a command line, a log or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import BaseModel, Field

from tiercel import RunContext, TaskError

ASKPASS = """#!/bin/sh
case "$1" in
  *[Uu]sername*) printf '%s\\n' "$TIERCEL_GIT_USERNAME" ;;
  *) printf '%s\\n' "$TIERCEL_GIT_PASSWORD" ;;
esac
"""


class Credentials(BaseModel):
    """How to authenticate to the remote repository."""

    username: str | None = Field(None, description="User for HTTPS (with `password`, often a token).")
    password: str | None = Field(None, description="Password or token for HTTPS; write `{{ secret('NAME') }}`.")
    privateKey: str | None = Field(
        None, description="PEM/OpenSSH private key for `ssh://` and `git@host:` URLs; write `{{ secret('NAME') }}`."
    )
    passphrase: str | None = Field(None, description="Passphrase of `privateKey`.")
    knownHosts: str | None = Field(
        None,
        description="`known_hosts` lines to check the SSH server's key; without them the key is accepted on first use.",
    )


def redact(text: str) -> str:
    """Drop the user-info part of URLs (`https://user:token@host`) from *text*."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text)


class Git:
    """Runs git with the environment the credentials need."""

    def __init__(self, ctx: RunContext, env: dict[str, str]) -> None:
        self.ctx, self.env = ctx, env

    async def __call__(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        if check and proc.returncode != 0:
            shown = " ".join(a for a in args if not a.startswith("-c"))
            raise TaskError(
                redact(f"git {shown} failed ({proc.returncode}): {err.decode(errors='replace').strip()[-1500:]}")
            )
        return out.decode(errors="replace")


@asynccontextmanager
async def git_for(ctx: RunContext, creds: Credentials) -> AsyncIterator[Git]:
    """A :class:`Git` whose commands authenticate with *creds*; its secrets live in a private temp dir."""
    if shutil.which("git") is None:
        raise TaskError("the `git` command is not installed on this worker (apt-get install git)")
    private = Path(tempfile.mkdtemp(prefix="tiercel-git-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
        askpass = private / "askpass.sh"
        askpass.write_text(ASKPASS)
        askpass.chmod(0o700)
        env.update(
            GIT_ASKPASS=str(askpass),
            SSH_ASKPASS=str(askpass),
            SSH_ASKPASS_REQUIRE="force",
            TIERCEL_GIT_USERNAME=creds.username or "",
            TIERCEL_GIT_PASSWORD=creds.password or creds.passphrase or "",
        )
        ssh = ["ssh", "-o", "BatchMode=no", "-o", f"UserKnownHostsFile={private / 'known_hosts'}"]
        known = private / "known_hosts"
        known.write_text((creds.knownHosts or "").strip() + "\n")
        ssh += ["-o", "StrictHostKeyChecking=" + ("yes" if creds.knownHosts else "accept-new")]
        if creds.privateKey:
            key = private / "id"
            key.write_text(creds.privateKey.strip() + "\n")
            key.chmod(0o600)
            ssh += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        env["GIT_SSH_COMMAND"] = " ".join(ssh)
        yield Git(ctx, env)
    finally:
        shutil.rmtree(private, ignore_errors=True)
