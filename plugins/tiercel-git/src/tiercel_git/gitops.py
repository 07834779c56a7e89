"""The repository as the source of truth both ways: ``git.SyncNamespaceFiles`` (repository → server) and
``git.PushFlows`` / ``git.PushNamespaceFiles`` (server → repository), with Kestra's names and properties.

The server is reached over its HTTP API (``serverUrl`` or ``$TIERCEL_SERVER``; ``$TIERCEL_TOKEN`` as a bearer
token when it asks for one), so these tasks run on any worker.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from tiercel import Example, RunContext, Task, TaskError
from tiercel_git._git import Credentials, Git, git_for, redact
from tiercel_git.tasks import KESTRA, Author


class _Server:
    """The Tiercel server's HTTP API, for the namespace files and flows these tasks read or write."""

    def __init__(self, url: str | None) -> None:
        import httpx

        url = url or os.environ.get("TIERCEL_SERVER")
        if not url:
            raise TaskError("set `serverUrl` (or $TIERCEL_SERVER on the worker): the Tiercel server to talk to")
        token = os.environ.get("TIERCEL_TOKEN")
        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.url + "/api/v1", timeout=60,
                                      headers={"Authorization": f"Bearer {token}"} if token else {})

    async def __aenter__(self) -> _Server:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = await self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise TaskError(f"cannot reach the Tiercel server at {self.url}: {type(exc).__name__}: {exc}") from None
        if r.status_code >= 400:
            try:
                message = r.json().get("message", r.text)
            except ValueError:
                message = r.text
            raise TaskError(f"the Tiercel server answered {method} {path} with {r.status_code}: {message}")
        return r

    async def files(self, namespace: str) -> list[str]:
        return sorted(f["path"] for f in (await self.call("GET", f"/namespaces/{namespace}/files/directory")).json())

    async def read(self, namespace: str, path: str) -> bytes:
        return (await self.call("GET", f"/namespaces/{namespace}/files", params={"path": path})).content

    async def write(self, namespace: str, path: str, data: bytes) -> None:
        await self.call("POST", f"/namespaces/{namespace}/files", params={"path": path},
                        files={"fileContent": (path.rsplit("/", 1)[-1], data)})

    async def delete(self, namespace: str, path: str) -> None:
        await self.call("DELETE", f"/namespaces/{namespace}/files", params={"path": path})

    async def flows(self, namespace: str, children: bool) -> list[dict[str, Any]]:
        found, page = [], 1
        while True:
            data = (await self.call("GET", "/flows/search",
                                    params={"namespace": namespace, "page": page, "size": 500})).json()
            found += data["results"]
            if len(found) >= data["total"] or not data["results"]:
                break
            page += 1
        keep = [f for f in found if f["namespace"] == namespace or (children and f["namespace"].startswith(namespace + "."))]
        return [(await self.call("GET", f"/flows/{f['namespace']}/{f['id']}")).json() for f in keep]


def _matches(name: str, patterns: list[str] | None) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _tree(folder: Path) -> dict[str, Path]:
    """Files under *folder* by their relative POSIX path (nothing under a `.git`)."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(folder).parts}


def _folder(clone: Path, directory: str) -> Path:
    folder = (clone / directory).resolve()
    if clone.resolve() not in [folder, *folder.parents]:
        raise TaskError(f"`gitDirectory` {directory!r} leaves the repository")
    return folder


class _GitOps(Credentials, Task):
    url: str = Field(description="The repository: `https://…`, `ssh://…`, `git@host:path`, `git://…` or `file://…`.")
    branch: str | None = Field(None, description="Branch to use; the remote's default branch when omitted (a branch the "
                                                 "remote lacks is created by the push tasks).")
    dryRun: bool = Field(False, description="Report what would change; change nothing.")
    serverUrl: str | None = Field(None, description="The Tiercel server; `$TIERCEL_SERVER` when omitted "
                                                    "(`$TIERCEL_TOKEN` is sent when set).")

    async def _clone(self, git: Git, clone: Path, for_push: bool) -> str | None:
        """Clone (depth 1); the branch pushed to. None when the repository has no commit yet."""
        args = ["clone", "--quiet", "--depth", "1"]
        exists = True
        if self.branch:
            exists = bool((await git("ls-remote", "--heads", self.url, self.branch)).strip())
            if not exists and not for_push:
                raise TaskError(f"the repository has no branch `{self.branch}`")
        await git(*args, *(["--branch", self.branch] if self.branch and exists else []), "--", self.url, str(clone))
        if self.branch and not exists:
            await git("checkout", "--quiet", "-B", self.branch, cwd=clone)
        return self.branch or (await git("symbolic-ref", "--short", "HEAD", cwd=clone)).strip()


class SyncNamespaceFiles(_GitOps):
    """Deploy a repository folder as a namespace's files: new and changed files are uploaded, and with
    `delete` the namespace's files that left the repository are deleted. `dryRun` shows what would change.
    Outputs `created`, `updated`, `deleted` (file paths) and `commit`."""

    type: ClassVar[str] = "git.SyncNamespaceFiles"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.SyncNamespaceFiles",)
    examples: ClassVar[list[Example]] = [
        Example("Keep a namespace's files equal to a repository folder", """\
id: git_sync_files
namespace: company.team
tasks:
  - id: sync
    type: git.SyncNamespaceFiles
    url: https://github.com/acme/etl
    branch: main
    gitDirectory: scripts
    namespace: company.team
    delete: true
    serverUrl: http://127.0.0.1:8080
triggers:
  - id: every_10_minutes
    type: core.Schedule
    cron: "*/10 * * * *"
""", run=False)
    ]

    namespace: str | None = Field(None, description="Namespace whose files are synced; the flow's own when omitted.")
    gitDirectory: str = Field("_files", description="Folder of the repository holding the files (recursively).")
    delete: bool = Field(False, description="Delete the namespace's files that are not in the folder.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        namespace = self.namespace or ctx.namespace
        clone = ctx.working_dir / "repository"
        async with git_for(ctx, self) as git:
            await self._clone(git, clone, for_push=False)
            commit = (await git("rev-parse", "HEAD", cwd=clone)).strip()
        folder = _folder(clone, self.gitDirectory)
        if not folder.is_dir():
            raise TaskError(f"`gitDirectory` {self.gitDirectory!r} is not a folder of the repository")
        wanted = _tree(folder)
        created, updated, deleted = [], [], []
        async with _Server(self.serverUrl) as server:
            present = set(await server.files(namespace))
            for name, path in wanted.items():
                data = path.read_bytes()
                if name in present and await server.read(namespace, name) == data:
                    continue
                (updated if name in present else created).append(name)
                if not self.dryRun:
                    await server.write(namespace, name, data)
            if self.delete:
                deleted = sorted(present - set(wanted))
                for name in deleted if not self.dryRun else ():
                    await server.delete(namespace, name)
        verb = "would sync" if self.dryRun else "synced"
        ctx.logger.info("%s %s files from %s: %d new, %d updated, %d deleted", verb, namespace, redact(self.url),
                        len(created), len(updated), len(deleted))
        return {"created": created, "updated": updated, "deleted": deleted, "commit": commit, "dryRun": self.dryRun}


class _PushOps(_GitOps):
    commitMessage: str = Field("Update from Tiercel", description="Message of the commit.")
    author: Author = Field(default_factory=Author, description="Author (and committer) of the commit.")
    delete: bool = Field(True, description="Delete from `gitDirectory` what the server no longer has.")

    def _deletable(self, name: str) -> bool:
        return True

    async def _push(self, ctx: RunContext, directory: str, files: dict[str, bytes]) -> dict[str, Any]:
        """Make *directory* of the repository hold *files*, commit and push; the change and the commit."""
        clone = ctx.working_dir / "repository"
        who = ["-c", f"user.name={self.author.name}", "-c", f"user.email={self.author.email}"]
        async with git_for(ctx, self) as git:
            branch = await self._clone(git, clone, for_push=True)
            folder = _folder(clone, directory)
            before = _tree(folder)
            created = sorted(n for n in files if n not in before)
            updated = sorted(n for n in files if n in before and before[n].read_bytes() != files[n])
            deleted = sorted(n for n in before if n not in files and self._deletable(n)) if self.delete else []
            commit = None
            if not self.dryRun:
                for name in created + updated:
                    (folder / name).parent.mkdir(parents=True, exist_ok=True)
                    (folder / name).write_bytes(files[name])
                for name in deleted:
                    (folder / name).unlink()
                await git("add", "--all", "--", directory, cwd=clone)
                if (await git("status", "--porcelain", cwd=clone)).strip():
                    await git(*who, "commit", "--quiet", "-m", self.commitMessage, cwd=clone)
                    commit = (await git("rev-parse", "HEAD", cwd=clone)).strip()
                    await git("push", "--quiet", self.url, f"HEAD:refs/heads/{branch}", cwd=clone)
        verb = "would push" if self.dryRun else "pushed" if commit else "nothing to push"
        ctx.logger.info("%s to %s (%s): %d new, %d updated, %d deleted", verb, redact(self.url), branch,
                        len(created), len(updated), len(deleted))
        return {"created": created, "updated": updated, "deleted": deleted, "commitId": commit,
                "pushed": commit is not None, "branch": branch, "dryRun": self.dryRun}


class PushNamespaceFiles(_PushOps):
    """Commit a namespace's files into a repository folder and push them (the reverse of
    `git.SyncNamespaceFiles`): new and changed files are written, and with `delete` (the default) the
    folder's files the namespace no longer has are removed. Outputs `created`, `updated`, `deleted`,
    `commitId` (none when nothing changed), `pushed` and `branch`."""

    type: ClassVar[str] = "git.PushNamespaceFiles"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.PushNamespaceFiles",)
    examples: ClassVar[list[Example]] = [
        Example("Commit a namespace's files every evening", """\
id: git_push_files
namespace: company.team
tasks:
  - id: push
    type: git.PushNamespaceFiles
    url: git@github.com:acme/etl.git
    privateKey: "{{ secret('GIT_SSH_KEY') }}"
    branch: main
    namespace: company.team
    files: ["*.py", "sql/**"]
    gitDirectory: _files
    commitMessage: "namespace files of {{ execution.id }}"
    serverUrl: http://127.0.0.1:8080
triggers:
  - id: evening
    type: core.Schedule
    cron: "0 19 * * *"
""", run=False)
    ]

    namespace: str | None = Field(None, description="Namespace whose files are pushed; the flow's own when omitted.")
    files: list[str] | None = Field(None, description="Glob patterns (`*.py`, `sql/**`) of the files to push; all "
                                                      "when omitted.")
    gitDirectory: str = Field("_files", description="Folder of the repository the files go to.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        namespace = self.namespace or ctx.namespace
        async with _Server(self.serverUrl) as server:
            names = [n for n in await server.files(namespace) if _matches(n, self.files)]
            files = {n: await server.read(namespace, n) for n in names}
        return await self._push(ctx, self.gitDirectory, files)

    def _deletable(self, name: str) -> bool:
        return _matches(name, self.files)


_NAMESPACE_LINE = re.compile(r"^namespace:[ \t]*(\S+)[ \t]*$", re.M)


class PushFlows(_PushOps):
    """Commit the flows of a namespace (and, with `includeChildNamespaces`, of its children, in sub-folders)
    into a repository folder as `<flow id>.yml` and push them (the reverse of `git.SyncFlows`).
    `targetNamespace` rewrites their namespace; with `delete` (the default) the folder's flow files the
    server no longer has are removed. Outputs `created`, `updated`, `deleted`, `commitId`, `pushed`, `branch`."""

    type: ClassVar[str] = "git.PushFlows"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.PushFlows",)
    examples: ClassVar[list[Example]] = [
        Example("Commit a namespace's flows every hour", """\
id: git_push_flows
namespace: system
tasks:
  - id: push
    type: git.PushFlows
    url: https://github.com/acme/flows
    username: flows-bot
    password: "{{ secret('GITHUB_TOKEN') }}"
    branch: main
    sourceNamespace: company.team
    includeChildNamespaces: true
    gitDirectory: _flows
    commitMessage: "flows as of {{ execution.startDate }}"
    serverUrl: http://127.0.0.1:8080
triggers:
  - id: hourly
    type: core.Schedule
    cron: "0 * * * *"
""", run=False)
    ]

    sourceNamespace: str | None = Field(None, description="Namespace whose flows are pushed; the flow's own when "
                                                          "omitted.")
    targetNamespace: str | None = Field(None, description="Namespace written into the pushed files instead of "
                                                          "`sourceNamespace` (children keep their suffix).")
    flows: list[str] | str | None = Field(None, description="Flow ids or glob patterns to push; all when omitted.")
    includeChildNamespaces: bool = Field(False, description="Also push the flows of the child namespaces, each in "
                                                            "the sub-folder of its relative name.")
    gitDirectory: str = Field("_flows", description="Folder of the repository the flow files go to.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        source = self.sourceNamespace or ctx.namespace
        patterns = self._patterns()
        files: dict[str, bytes] = {}
        async with _Server(self.serverUrl) as server:
            for flow in await server.flows(source, self.includeChildNamespaces):
                if not _matches(flow["id"], patterns):
                    continue
                suffix = flow["namespace"][len(source):].lstrip(".")
                text = flow["source"]
                if self.targetNamespace:
                    target = self.targetNamespace + (f".{suffix}" if suffix else "")
                    text = _NAMESPACE_LINE.sub(f"namespace: {target}", text, count=1)
                folder = suffix.replace(".", "/") + "/" if suffix else ""
                files[f"{folder}{flow['id']}.yml"] = text.encode()
        return await self._push(ctx, self.gitDirectory, files)

    def _deletable(self, name: str) -> bool:
        if not name.endswith((".yml", ".yaml")):
            return False  # a README beside the flows stays
        if "/" in name and not self.includeChildNamespaces:
            return False
        return _matches(name.rsplit("/", 1)[-1].rsplit(".", 1)[0], self._patterns())

    def _patterns(self) -> list[str] | None:
        return [self.flows] if isinstance(self.flows, str) else self.flows
