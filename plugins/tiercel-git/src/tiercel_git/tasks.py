"""``git.Clone``, ``git.Push`` and ``git.SyncFlows``, with Kestra's names and properties."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tiercel import Example, RunContext, Task, TaskError
from tiercel_git._git import Credentials, git_for, redact

KESTRA = "io.kestra.plugin.git"


def _inside(ctx: RunContext, directory: str | None) -> Path:
    base = ctx.working_dir.resolve()
    path = (base / (directory or ".")).resolve()
    if path != base and base not in path.parents:
        raise TaskError(f"`directory` {directory!r} leaves the working directory")
    return path


class _Remote(Credentials, Task):
    url: str = Field(description="The repository: `https://…`, `ssh://…`, `git@host:path`, `git://…` or `file://…`.")
    branch: str | None = Field(None, description="Branch to use; the remote's default branch when omitted.")


class Clone(_Remote):
    """Clone a repository into the working directory (put it in a `core.WorkingDirectory` so the next tasks
    see the files). Outputs `directory` and `commit` (the checked-out commit id)."""

    type: ClassVar[str] = "git.Clone"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.Clone",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Clone a branch and list its files",
            """\
id: git_clone_example
namespace: company.team
inputs:
  - id: repository
    type: STRING
    defaults: https://github.com/kestra-io/examples
tasks:
  - id: work
    type: core.WorkingDirectory
    tasks:
      - id: clone
        type: git.Clone
        url: "{{ inputs.repository }}"
        branch: main
        directory: repo
      - id: files
        type: scripts.Shell
        commands: [ls repo]
""",
            run=False,
        )
    ]

    directory: str | None = Field(
        None, description="Folder of the working directory to clone into; the working directory itself when omitted."
    )
    depth: int | None = Field(1, ge=1, description="Commits of history to fetch (1: the last only); none for all.")
    cloneSubmodules: bool = Field(False, description="Also clone the submodules, recursively.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        target = _inside(ctx, self.directory)
        if target.exists() and any(target.iterdir()):
            raise TaskError(
                f"cannot clone into {self.directory or 'the working directory'}: it is not empty (set `directory`)"
            )
        args = ["clone", "--quiet"]
        if self.branch:
            args += ["--branch", self.branch]
        if self.depth:
            args += ["--depth", str(self.depth)]
            if self.cloneSubmodules:
                args += ["--shallow-submodules"]
        if self.cloneSubmodules:
            args += ["--recurse-submodules"]
        async with git_for(ctx, self) as git:
            await git(*args, "--", self.url, str(target))
            commit = (await git("rev-parse", "HEAD", cwd=target)).strip()
        ctx.logger.info("cloned %s at %s into %s", redact(self.url), commit[:12], self.directory or ".")
        return {"directory": str(target), "commit": commit}


class Author(BaseModel):
    """Who a commit is by."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("Tiercel", description="Author name.")
    email: str = Field("tiercel@localhost", description="Author e-mail.")


class Push(_Remote):
    """Commit the changes of a cloned directory and push them (and a tag). Outputs `commit` (none when there
    was nothing to commit) and `pushed`."""

    type: ClassVar[str] = "git.Push"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.Push",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Clone, change a file, commit and push with a tag",
            """\
id: git_push_example
namespace: company.team
inputs:
  - id: repository
    type: STRING
    defaults: git@github.com:acme/reports.git
tasks:
  - id: work
    type: core.WorkingDirectory
    tasks:
      - id: clone
        type: git.Clone
        url: "{{ inputs.repository }}"
        privateKey: "{{ secret('GIT_SSH_KEY') }}"
        directory: repo
      - id: write
        type: scripts.Shell
        commands: ["date > repo/last-run.txt"]
      - id: push
        type: git.Push
        url: "{{ inputs.repository }}"
        privateKey: "{{ secret('GIT_SSH_KEY') }}"
        directory: repo
        commitMessage: "report of {{ execution.id }}"
        author: {name: Reports, email: reports@example.com}
        tag: "run-{{ execution.id }}"
""",
            run=False,
        )
    ]

    directory: str | None = Field(None, description="The cloned folder, in the working directory.")
    commitMessage: str = Field(description="Message of the commit.")
    author: Author = Field(default_factory=Author, description="Author (and committer) of the commit.")
    addFilesPattern: list[str] = Field(["."], description="Paths (git pathspecs) to add before committing.")
    tag: str | None = Field(None, description="Tag the new commit and push the tag.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        repo = _inside(ctx, self.directory)
        if not (repo / ".git").exists():
            raise TaskError(f"{self.directory or 'the working directory'} is not a git clone: run git.Clone first")
        who = ["-c", f"user.name={self.author.name}", "-c", f"user.email={self.author.email}"]
        async with git_for(ctx, self) as git:
            if self.branch:
                await git("checkout", "-B", self.branch, cwd=repo)
            await git("add", "--all", "--", *self.addFilesPattern, cwd=repo)
            changed = (await git("status", "--porcelain", cwd=repo)).strip()
            commit = None
            if changed:
                await git(*who, "commit", "--quiet", "-m", self.commitMessage, cwd=repo)
                commit = (await git("rev-parse", "HEAD", cwd=repo)).strip()
            else:
                ctx.logger.info("nothing to commit")
            if self.tag:
                await git(*who, "tag", "-a", self.tag, "-m", self.commitMessage, cwd=repo)
            branch = self.branch or (await git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo)).strip()
            refs = [f"HEAD:refs/heads/{branch}"] + ([f"refs/tags/{self.tag}"] if self.tag else [])
            await git("push", "--quiet", self.url, *refs, cwd=repo)
        ctx.logger.info("pushed %s to %s", branch, redact(self.url))
        return {"commit": commit, "pushed": bool(commit or self.tag), "branch": branch}


class SyncFlows(_Remote):
    """Deploy the flows of a repository folder to a Tiercel server: new and changed flows are deployed, and
    with `delete` the flows of the synced namespaces that left the repository are deleted. `dryRun` shows
    what would change. Outputs `created`, `updated`, `deleted` (flow names) and `commit`."""

    type: ClassVar[str] = "git.SyncFlows"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.SyncFlows",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Deploy the flows of a repository every 10 minutes",
            """\
id: git_sync_example
namespace: system
inputs:
  - id: repository
    type: STRING
    defaults: https://github.com/acme/flows
  - id: server
    type: STRING
    defaults: http://127.0.0.1:8080
tasks:
  - id: sync
    type: git.SyncFlows
    url: "{{ inputs.repository }}"
    branch: main
    gitDirectory: flows
    targetNamespace: company.team
    delete: true
    serverUrl: "{{ inputs.server }}"
triggers:
  - id: every_10_minutes
    type: core.Schedule
    cron: "*/10 * * * *"
""",
            run=False,
        )
    ]

    gitDirectory: str = Field(
        "_flows", description="Folder of the repository holding the flow files (searched recursively)."
    )
    targetNamespace: str | None = Field(
        None, description="Sync only the flows of this namespace and below; every namespace found when omitted."
    )
    delete: bool = Field(
        False, description="Delete deployed flows of the synced namespaces that are not in the folder."
    )
    dryRun: bool = Field(False, description="Report what would change; change nothing.")
    serverUrl: str | None = Field(None, description="The Tiercel server to deploy to; `$TIERCEL_SERVER` when omitted.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import asyncio
        import os

        server = self.serverUrl or os.environ.get("TIERCEL_SERVER")
        if not server:
            raise TaskError("set `serverUrl` (or $TIERCEL_SERVER on the worker): the server to deploy the flows to")
        clone = ctx.working_dir / "repository"
        async with git_for(ctx, self) as git:
            args = ["clone", "--quiet", "--depth", "1"] + (["--branch", self.branch] if self.branch else [])
            await git(*args, "--", self.url, str(clone))
            commit = (await git("rev-parse", "HEAD", cwd=clone)).strip()
        folder = (clone / self.gitDirectory).resolve()
        if not folder.is_dir() or clone.resolve() not in [folder, *folder.parents]:
            raise TaskError(f"`gitDirectory` {self.gitDirectory!r} is not a folder of the repository")
        command = [sys.executable, "-m", "tiercel.cli.main", "flows", "deploy", str(folder), "--server", server]
        command += (
            (["--namespace", self.targetNamespace] if self.targetNamespace else [])
            + (["--delete"] if self.delete else [])
            + (["--dry-run"] if self.dryRun else [])
        )
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            out = (await proc.communicate())[0].decode(errors="replace")
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
        text = out.replace(str(folder), self.gitDirectory)
        if proc.returncode != 0:
            raise TaskError(f"deploying the flows of {self.gitDirectory} failed:\n{text.strip()[-3000:]}")
        for line in text.splitlines():
            ctx.logger.info("%s", line)
        found = {sign: [m.group(1) for m in re.finditer(rf"^{re.escape(sign)} (\S+)", text, re.M)] for sign in "+~-"}
        return {
            "created": found["+"],
            "updated": found["~"],
            "deleted": found["-"],
            "commit": commit,
            "dryRun": self.dryRun,
        }
