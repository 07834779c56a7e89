"""One small interface over SFTP (asyncssh) and FTP/FTPS (aioftp), so every task and trigger is written once.
The client libraries are imported when a connection is first opened."""

from __future__ import annotations

import asyncio
import posixpath
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from tiercel import TaskError


@dataclass
class Entry:
    """A remote file as outputs and trigger variables show it."""

    name: str
    path: str
    size: int
    modified: float
    isDirectory: bool

    def json(self) -> dict[str, Any]:
        return asdict(self)


class Remote(Protocol):
    async def list(self, path: str, recursive: bool) -> list[Entry]: ...
    async def download(self, path: str, local: Path) -> None: ...
    async def upload(self, local: Path, path: str) -> None: ...
    async def delete(self, path: str) -> bool: ...
    async def move(self, source: str, target: str, overwrite: bool) -> bool: ...
    async def makedirs(self, path: str) -> None: ...


def matching(entries: list[Entry], pattern: str | None) -> list[Entry]:
    """Files (not folders) whose full path matches *pattern* (a regular expression), sorted by path."""
    regex = re.compile(pattern) if pattern else None
    return sorted(
        (
            e
            for e in entries
            if not e.isDirectory and (regex is None or regex.fullmatch(e.path) or regex.fullmatch(e.name))
        ),
        key=lambda e: e.path,
    )


class Sftp:
    def __init__(self, sftp: Any) -> None:
        self.sftp = sftp

    async def list(self, path: str, recursive: bool) -> list[Entry]:
        import asyncssh

        out = []
        for item in await self.sftp.readdir(path):
            if item.filename in (".", ".."):
                continue
            full = posixpath.join(path, item.filename)
            folder = item.attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY
            out.append(Entry(item.filename, full, item.attrs.size or 0, float(item.attrs.mtime or 0), folder))
            if folder and recursive:
                out += await self.list(full, True)
        return out

    async def download(self, path: str, local: Path) -> None:
        await self.sftp.get(path, str(local))

    async def upload(self, local: Path, path: str) -> None:
        await self.sftp.put(str(local), path)

    async def delete(self, path: str) -> bool:
        import asyncssh

        try:
            await self.sftp.remove(path)
        except asyncssh.SFTPNoSuchFile:
            return False
        return True

    async def move(self, source: str, target: str, overwrite: bool) -> bool:
        import asyncssh

        try:
            await (self.sftp.posix_rename if overwrite else self.sftp.rename)(source, target)
        except asyncssh.SFTPNoSuchFile:
            return False
        return True

    async def makedirs(self, path: str) -> None:
        await self.sftp.makedirs(path, exist_ok=True)


class Ftp:
    def __init__(self, client: Any) -> None:
        self.client = client

    async def list(self, path: str, recursive: bool) -> list[Entry]:
        from datetime import datetime

        out = []
        for item, info in await self.client.list(path, recursive=recursive):
            modified = info.get("modify")
            stamp = datetime.strptime(modified[:14], "%Y%m%d%H%M%S").timestamp() if modified else 0.0
            out.append(
                Entry(
                    item.name,
                    str(item) if str(item).startswith("/") else posixpath.join(path, str(item)),
                    int(info.get("size") or 0),
                    stamp,
                    info.get("type") == "dir",
                )
            )
        return out

    async def download(self, path: str, local: Path) -> None:
        await self.client.download(path, local, write_into=True)

    async def upload(self, local: Path, path: str) -> None:
        await self.client.upload(local, path, write_into=True)

    async def delete(self, path: str) -> bool:
        import aioftp

        try:
            await self.client.remove_file(path)
        except aioftp.StatusCodeError as exc:
            if "550" in str(exc.received_codes):
                return False
            raise
        return True

    async def move(self, source: str, target: str, overwrite: bool) -> bool:
        if not await self.client.exists(source):
            return False
        if overwrite and await self.client.exists(target):
            await self.client.remove_file(target)
        await self.client.rename(source, target)
        return True

    async def makedirs(self, path: str) -> None:
        await self.client.make_directory(path, parents=True)


@asynccontextmanager
async def sftp(
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    key: str | None,
    passphrase: str | None,
    known_hosts: str | None,
    timeout: float,
) -> AsyncIterator[Remote]:
    import asyncssh

    keys = None
    if key:
        try:
            keys = [asyncssh.import_private_key(key, passphrase)]
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise TaskError(
                f"`keyfile` is not a usable private key ({type(exc).__name__}; check `passphrase`)"
            ) from None
    known = asyncssh.import_known_hosts(known_hosts) if known_hosts else None
    try:
        login: dict[str, Any] = {k: v for k, v in {"username": username, "password": password}.items() if v is not None}
        async with asyncssh.connect(
            host, port=port, client_keys=keys, known_hosts=known, connect_timeout=timeout, agent_path=None, **login
        ) as conn:
            async with conn.start_sftp_client() as client:
                yield Sftp(client)
    except asyncssh.PermissionDenied:
        raise TaskError(f"the SFTP server {host}:{port} refused the login of {username!r}") from None
    except asyncssh.HostKeyNotVerifiable as exc:
        raise TaskError(f"the SFTP server {host}:{port} has a host key not in `knownHosts` ({exc.reason})") from None
    except asyncssh.SFTPError as exc:
        raise TaskError(f"SFTP {host}:{port}: {exc.reason}") from None
    except (OSError, asyncssh.Error) as exc:
        raise TaskError(f"could not reach the SFTP server {host}:{port} ({type(exc).__name__}: {exc})") from None


@dataclass
class Tls:
    """FTPS: how the control connection is secured and whether the data connections are too."""

    mode: str  # EXPLICIT (AUTH TLS on the plain port) or IMPLICIT (TLS from the first byte)
    protection: str  # PROT level of the data connections: P (private, TLS) or C (clear)
    trust_all: bool  # accept any certificate (self-signed, another host name)

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.trust_all:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _ftps_client(tls: Tls, timeout: float) -> Any:
    import aioftp

    class Client(aioftp.Client):  # type: ignore[misc]
        async def _open_connection(self, host: str, port: int) -> Any:
            if self._stream is not None and tls.protection == "C":  # a data connection in clear
                return await asyncio.open_connection(host, port)
            return await super()._open_connection(host, port)

    return Client(socket_timeout=timeout, ssl=tls.context() if tls.mode == "IMPLICIT" else None)


@asynccontextmanager
async def ftp(
    host: str, port: int, username: str | None, password: str | None, timeout: float, tls: Tls | None = None
) -> AsyncIterator[Remote]:
    import aioftp

    name = "FTPS" if tls else "FTP"
    # Connect under asyncio.timeout, not aioftp's own wait_for, which can swallow a cancellation (a kill).
    client = _ftps_client(tls, timeout) if tls else aioftp.Client(socket_timeout=timeout)
    step = "the connection"
    try:
        async with asyncio.timeout(timeout):
            await client.connect(host, port)
            step = "TLS (AUTH TLS, PBSZ, PROT)"
            if tls and tls.mode == "EXPLICIT":
                await client.upgrade_to_tls(tls.context())  # AUTH TLS, then PBSZ 0 and PROT P
            elif tls:
                await client.command("PBSZ 0", "200")
                await client.command("PROT P", "200")
            if tls and tls.protection == "C":
                await client.command("PROT C", "200")
            step = f"the login of {username!r}"
            await client.login(username or "anonymous", password or "")
    except aioftp.StatusCodeError as exc:
        client.close()
        raise TaskError(f"the {name} server {host}:{port} refused {step}: {' '.join(exc.info).strip()}") from None
    except ssl.SSLError as exc:
        client.close()
        raise TaskError(f"TLS with the {name} server {host}:{port} failed: {exc.reason or exc} (a self-signed "
                        "certificate needs `insecureTrustAllCertificates: true`)") from None
    except (OSError, TimeoutError) as exc:
        client.close()
        raise TaskError(f"could not reach the {name} server {host}:{port} ({type(exc).__name__}: {exc})") from None
    try:
        yield Ftp(client)
    except aioftp.StatusCodeError as exc:
        raise TaskError(f"{name} {host}:{port}: {' '.join(exc.info).strip() or exc.received_codes}") from None
    finally:
        client.close()
