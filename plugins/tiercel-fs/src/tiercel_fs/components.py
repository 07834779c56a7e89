"""Upload, Download, Downloads, List, Delete, Move and a polling Trigger, for SFTP, FTP and FTPS.

Each operation is written once (the ``_*Op`` classes) over :mod:`tiercel_fs._remote`; each protocol
contributes its connection properties (``_Sftp``, ``_Ftp``, ``_Ftps``); the registered types are their products,
named as Kestra names them (``fs.sftp.Upload`` ↔ ``io.kestra.plugin.fs.sftp.Upload``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import posixpath
import shutil
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, Field

from tiercel import Example, PollingTrigger, RunContext, Task, TaskError, TriggerEvent
from tiercel_fs import _remote
from tiercel_fs._remote import Entry, Remote, matching

# ---------------------------------------------------------------- connections


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class _Connection(BaseModel):
    host: str = Field(description="Server host.")
    username: str | None = Field(None, description="User to log in as.")
    password: str | None = Field(None, description="Password; write `{{ secret('NAME') }}`. Never logged.")
    connectTimeout: timedelta = Field(timedelta(seconds=30), description="Longest wait to connect and for each answer.")

    protocol: ClassVar[str] = ""

    def connect(self) -> AbstractAsyncContextManager[Remote]:
        raise NotImplementedError


class _Sftp(_Connection):
    port: int = Field(22, description="Server port.")
    keyfile: str | None = Field(
        None, description="Private key (OpenSSH or PEM text) to log in with; write `{{ secret('NAME') }}`."
    )
    passphrase: str | None = Field(None, description="Passphrase of `keyfile`.")
    knownHosts: str | None = Field(
        None, description="`known_hosts` lines the server's key must match; not checked when omitted."
    )

    protocol: ClassVar[str] = "sftp"

    def connect(self) -> AbstractAsyncContextManager[Remote]:
        return _remote.sftp(
            self.host,
            self.port,
            self.username,
            self.password,
            self.keyfile,
            self.passphrase,
            self.knownHosts,
            self.connectTimeout.total_seconds(),
        )


class _Ftp(_Connection):
    port: int = Field(21, description="Server port.")

    protocol: ClassVar[str] = "ftp"

    def connect(self) -> AbstractAsyncContextManager[Remote]:
        return _remote.ftp(self.host, self.port, self.username, self.password, self.connectTimeout.total_seconds())


class _Ftps(_Ftp):
    mode: Annotated[Literal["EXPLICIT", "IMPLICIT"], BeforeValidator(_upper)] = Field(
        "EXPLICIT",
        description="EXPLICIT: connect in clear and switch to TLS (`AUTH TLS`, usually port 21); IMPLICIT: TLS "
        "from the first byte (usually port 990).",
    )
    dataChannelProtectionLevel: Annotated[Literal["P", "C"], BeforeValidator(_upper)] = Field(
        "P",
        description="Protection of the data connections (files, listings): P (private: TLS) or C (clear: only the "
        "control connection, with the password, is encrypted). RFC 2228's S and E are served by no common server.",
    )
    insecureTrustAllCertificates: bool = Field(
        False,
        description="Accept any server certificate (self-signed, expired, another host name). Leave false in "
        "production: the connection is then open to interception.",
    )

    protocol: ClassVar[str] = "ftps"

    def connect(self) -> AbstractAsyncContextManager[Remote]:
        tls = _remote.Tls(self.mode, self.dataChannelProtectionLevel, self.insecureTrustAllCertificates)
        return _remote.ftp(self.host, self.port, self.username, self.password, self.connectTimeout.total_seconds(), tls)


# ---------------------------------------------------------------- operations

Action = Literal["MOVE", "DELETE", "NONE"]


async def _fetch(ctx: RunContext, remote: Remote, entries: list[Entry]) -> list[dict[str, Any]]:
    """Download *entries* into internal storage; each as its JSON plus `uri`."""
    out = []
    for n, entry in enumerate(entries):
        local = ctx.working_dir / f"{n}-{entry.name}"
        await remote.download(entry.path, local)
        out.append({**entry.json(), "uri": await asyncio.to_thread(ctx.put_file, local, entry.name)})
        local.unlink()
    return out


async def _settle(remote: Remote, entries: list[Entry], action: Action, move_directory: str | None) -> None:
    """Apply `action` to files already downloaded (a file already gone was settled before: skipped)."""
    if action == "MOVE":
        assert move_directory
        await remote.makedirs(move_directory)
    for entry in entries:
        if action == "DELETE":
            await remote.delete(entry.path)
        elif action == "MOVE":
            await remote.move(entry.path, posixpath.join(move_directory or "", entry.name), True)


class _UploadOp(Task):
    from_: str = Field(alias="from", description="The `tiercel://` file to upload (a task's output).")
    to: str = Field(
        description="Remote path to write (its folders are created); ending in `/`, the file keeps its name."
    )

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        name = posixpath.basename(self.from_) or "file"
        target = self.to + name if self.to.endswith("/") else self.to
        local = ctx.working_dir / name

        def copy() -> None:
            with ctx.open_file(self.from_) as stream, open(local, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)

        await asyncio.to_thread(copy)
        async with self.connect() as remote:  # type: ignore[attr-defined]
            folder = posixpath.dirname(target)
            if folder not in ("", "/"):
                await remote.makedirs(folder)
            await remote.upload(local, target)
        ctx.logger.info("uploaded %s (%d bytes) to %s", name, local.stat().st_size, target)
        return {"to": target}


class _UploadsOp(Task):
    from_: list[str] | str = Field(
        alias="from", description="The `tiercel://` files to upload: a list, or one URI, or a JSON list as text."
    )
    to: str = Field(description="Remote folder the files go to, each keeping its name (the folder is created).")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        uris = self.from_
        if isinstance(uris, str):
            uris = json.loads(uris) if uris.lstrip().startswith("[") else [uris]
        folder = self.to.rstrip("/") or "/"
        targets = []
        async with self.connect() as remote:  # type: ignore[attr-defined]
            if folder != "/":
                await remote.makedirs(folder)
            for n, uri in enumerate(uris):
                name = posixpath.basename(uri) or f"file-{n}"
                local = ctx.working_dir / f"{n}-{name}"

                def copy(uri: str = uri, local: Any = local) -> None:
                    with ctx.open_file(uri) as stream, open(local, "wb") as out:
                        shutil.copyfileobj(stream, out, 1 << 20)

                await asyncio.to_thread(copy)
                target = posixpath.join(folder, name)
                await remote.upload(local, target)
                local.unlink()
                targets.append(target)
        ctx.logger.info("uploaded %d file(s) to %s", len(targets), folder)
        return {"files": targets, "size": len(targets)}


class _DownloadOp(Task):
    from_: str = Field(alias="from", description="Remote path of the file.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        name = posixpath.basename(self.from_) or "file"
        local = ctx.working_dir / name
        async with self.connect() as remote:  # type: ignore[attr-defined]
            await remote.download(self.from_, local)
        size = local.stat().st_size
        uri = await asyncio.to_thread(ctx.put_file, local, name)
        return {"uri": uri, "to": uri, "size": size}


class _ListOp(Task):
    from_: str = Field(alias="from", description="Remote folder to list.")
    regExp: str | None = Field(None, description="Regular expression the file's path (or name) must match.")
    recursive: bool = Field(False, description="Also list the sub-folders.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        async with self.connect() as remote:  # type: ignore[attr-defined]
            files = matching(await remote.list(self.from_, self.recursive), self.regExp)
        return {"files": [f.json() for f in files], "size": len(files)}


class _DownloadsOp(_ListOp):
    action: Action = Field(
        "NONE", description="What to do with each file once downloaded: MOVE it to `moveDirectory`, DELETE it, or NONE."
    )
    moveDirectory: str | None = Field(None, description="Remote folder the files are moved to (`action: MOVE`).")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        if self.action == "MOVE" and not self.moveDirectory:
            raise TaskError("`action: MOVE` needs `moveDirectory`")
        async with self.connect() as remote:  # type: ignore[attr-defined]
            entries = matching(await remote.list(self.from_, self.recursive), self.regExp)
            files = await _fetch(ctx, remote, entries)
            await _settle(remote, entries, self.action, self.moveDirectory)
        return {"files": files, "outputFiles": {f["name"]: f["uri"] for f in files}, "size": len(files)}


class _DeleteOp(Task):
    uri: str = Field(description="Remote path of the file to delete.")
    errorOnMissing: bool = Field(False, description="Fail when the file does not exist.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        async with self.connect() as remote:  # type: ignore[attr-defined]
            deleted = await remote.delete(self.uri)
        if not deleted and self.errorOnMissing:
            raise TaskError(f"{self.uri} does not exist")
        return {"deleted": deleted, "uri": self.uri}


class _MoveOp(Task):
    from_: str = Field(alias="from", description="Remote path of the file.")
    to: str = Field(description="New remote path; ending in `/`, the file keeps its name there.")
    overwrite: bool = Field(False, description="Replace a file already at `to`.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        target = self.to + posixpath.basename(self.from_) if self.to.endswith("/") else self.to
        async with self.connect() as remote:  # type: ignore[attr-defined]
            folder = posixpath.dirname(target)
            if folder not in ("", "/"):
                await remote.makedirs(folder)
            if not await remote.move(self.from_, target, self.overwrite):
                raise TaskError(f"{self.from_} does not exist")
        return {"from": self.from_, "to": target}


class _TriggerOp(PollingTrigger):
    from_: str = Field(alias="from", description="Remote folder to watch.")
    regExp: str | None = Field(None, description="Regular expression the file's path (or name) must match.")
    recursive: bool = Field(False, description="Also watch the sub-folders.")
    action: Action = Field(
        "NONE",
        description="Once the execution exists: MOVE the files to `moveDirectory`, DELETE "
        "them, or NONE (each file still starts one execution only).",
    )
    moveDirectory: str | None = Field(None, description="Remote folder the files are moved to (`action: MOVE`).")
    interval: timedelta = Field(timedelta(seconds=60), description="Time between two polls.")

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        if self.action == "MOVE" and not self.moveDirectory:
            raise TaskError("`action: MOVE` needs `moveDirectory`")
        seen: dict[str, float] = ctx.state.get("seen", {})
        async with self.connect() as remote:  # type: ignore[attr-defined]
            entries = [
                e
                for e in matching(await remote.list(self.from_, self.recursive), self.regExp)
                if seen.get(e.path) != e.modified
            ]
            if not entries:
                return None
            files = await _fetch(ctx, remote, entries)
        key = hashlib.sha256(json.dumps([[e.path, e.size, e.modified] for e in entries]).encode()).hexdigest()[:32]

        async def ack() -> None:
            if self.action != "NONE":
                async with self.connect() as remote:  # type: ignore[attr-defined]
                    await _settle(remote, entries, self.action, self.moveDirectory)
            # NONE remembers each file (by its modification time); MOVE and DELETE too, in case they failed halfway
            ctx.state["seen"] = {**ctx.state.get("seen", {}), **{e.path: e.modified for e in entries}}

        return TriggerEvent({"files": files}, key=key, ack=ack)


# ---------------------------------------------------------------- the product

_OPS = {
    "Upload": (_UploadOp, "Upload a file from internal storage to the server; outputs the remote path `to`."),
    "Uploads": (_UploadsOp, "Upload several files from internal storage into a remote folder; outputs `files` (remote paths)."),
    "Download": (
        _DownloadOp,
        "Download a file from the server into internal storage; outputs `uri` (also `to`) and `size`.",
    ),
    "Downloads": (
        _DownloadsOp,
        "Download every file of a folder matching `regExp`, then MOVE, DELETE or keep them; "
        "outputs `files` (each with its `uri`) and `outputFiles` (name → uri).",
    ),
    "List": (_ListOp, "List the files of a folder matching `regExp`; outputs `files` (name, path, size, modified)."),
    "Delete": (_DeleteOp, "Delete a file on the server; outputs `deleted` (false when it did not exist)."),
    "Move": (_MoveOp, "Move or rename a file on the server."),
    "Trigger": (
        _TriggerOp,
        "Start an execution when new files appear in a folder: `trigger.files` lists them, each "
        "downloaded into internal storage (`uri`); each file starts one execution only.",
    ),
}
_PROTOCOLS = {"sftp": (_Sftp, "SFTP", 22), "ftp": (_Ftp, "FTP", 21), "ftps": (_Ftps, "FTPS", 21)}


def _example(protocol: str, op: str) -> Example:
    head = f"""\
id: {protocol}_{op.lower()}_example
namespace: company.team
inputs:
  - {{id: host, type: STRING, defaults: files.example.com}}
  - {{id: port, type: INT, defaults: {_PROTOCOLS[protocol][2]}}}
"""
    conn = f"""\
    host: "{{{{ inputs.host }}}}"
    port: "{{{{ inputs.port }}}}"
    username: tiercel
    password: "{{{{ secret('{protocol.upper()}_PASSWORD') }}}}"
"""
    if protocol == "ftps":
        conn += "    mode: EXPLICIT\n    dataChannelProtectionLevel: P\n"
    kind = f"fs.{protocol}.{op}"
    if op == "Trigger":
        return Example(
            "Process each new CSV file of a folder, then move it away",
            head
            + f"""\
tasks:
  - id: each
    type: core.ForEach
    values: "{{{{ trigger.files | map(attribute='uri') | list }}}}"
    tasks:
      - id: log
        type: core.Log
        message: "new file {{{{ taskrun.value }}}}"
triggers:
  - id: watch
    type: {kind}
    host: files.example.com
    username: tiercel
    password: "{{{{ secret('{protocol.upper()}_PASSWORD') }}}}"
    from: /incoming
    regExp: ".*\\\\.csv"
    action: MOVE
    moveDirectory: /archive
    interval: PT30S
""",
            run=False,
        )
    body = {
        "Upload": '  - id: make\n    type: scripts.Shell\n    commands: ["echo id,name > report.csv"]\n'
        "    outputFiles: [report.csv]\n  - id: task\n    type: {kind}\n{conn}"
        "    from: \"{{{{ outputs.make.outputFiles['report.csv'] }}}}\"\n    to: /upload/\n",
        "Uploads": '  - id: make\n    type: scripts.Shell\n    commands: ["echo a > a.csv", "echo b > b.csv"]\n'
        "    outputFiles: [a.csv, b.csv]\n  - id: task\n    type: {kind}\n{conn}"
        "    from:\n      - \"{{{{ outputs.make.outputFiles['a.csv'] }}}}\"\n"
        "      - \"{{{{ outputs.make.outputFiles['b.csv'] }}}}\"\n    to: /upload\n",
        "Download": "  - id: task\n    type: {kind}\n{conn}    from: /upload/report.csv\n",
        "Downloads": '  - id: task\n    type: {kind}\n{conn}    from: /upload\n    regExp: ".*\\\\.csv"\n    action: NONE\n',
        "List": "  - id: task\n    type: {kind}\n{conn}    from: /upload\n    recursive: true\n",
        "Delete": "  - id: task\n    type: {kind}\n{conn}    uri: /upload/old.csv\n",
        "Move": "  - id: task\n    type: {kind}\n{conn}    from: /upload/report.csv\n    to: /archive/\n",
    }[op].format(kind=kind, conn=conn)
    return Example(f"{op} over {_PROTOCOLS[protocol][1]}", head + "tasks:\n" + body, run=False)


def _build() -> dict[str, type]:
    classes: dict[str, type] = {}
    for protocol, (conn, label, _) in _PROTOCOLS.items():
        for op, (base, doc) in _OPS.items():
            name = f"{label.title()}{op}"
            classes[name] = type(
                name,
                (base, conn),
                {
                    "__doc__": f"{label}: {doc}",
                    "__module__": __name__,
                    "type": f"fs.{protocol}.{op}",
                    "aliases": (f"io.kestra.plugin.fs.{protocol}.{op}",),
                    "examples": [_example(protocol, op)],
                    "__annotations__": {
                        "type": ClassVar[str],
                        "aliases": ClassVar[tuple[str, ...]],
                        "examples": ClassVar[list[Example]],
                    },
                },
            )
    return classes


COMPONENTS = _build()
TASKS = [c for c in COMPONENTS.values() if not issubclass(c, PollingTrigger)]
TRIGGERS = [c for c in COMPONENTS.values() if issubclass(c, PollingTrigger)]
globals().update(COMPONENTS)
