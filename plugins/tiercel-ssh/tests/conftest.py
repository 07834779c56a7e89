"""A private OpenSSH sshd on a free loopback port, with a host key and a client key made for it
(also used by tests/bench/bench_runners.py)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tiercel.testing import free_port
from tiercel.testing.services import require

USER = "tiercel-test"
SSHD = "/usr/sbin/sshd"


@dataclass
class SSHServer:
    host: str
    port: int
    username: str
    private_key: str
    known_hosts: str
    process: subprocess.Popen[bytes]

    def properties(self, **extra: object) -> dict[str, object]:
        """The runner's properties for this server."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "privateKey": self.private_key,
            "knownHosts": self.known_hosts,
            **extra,
        }


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def sshd_missing() -> str | None:
    """Why no private sshd can start here, or None."""
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        return "openssh-server is not installed"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"no user {USER}"
    return None


@pytest.fixture(scope="session")
def ssh_server() -> Iterator[SSHServer]:
    missing = sshd_missing()
    if missing:
        require(
            "sshd",
            "scripts/services/sshd.sh (apt-get install openssh-server; a user tiercel-test with /bin/sh)",
            missing,
        )
    with start_sshd() as server:
        yield server


@contextlib.contextmanager
def start_sshd() -> Iterator[SSHServer]:
    """Start sshd on a free port as the test user; stopped (by its pid) on exit."""
    root = Path(tempfile.mkdtemp(prefix="tiercel-sshd-"))
    root.chmod(0o755)  # sshd reads authorized_keys as the user
    _keygen(root / "host_key")
    _keygen(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    (root / "authorized_keys").chmod(0o644)
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        f"UsePAM no\nStrictModes no\nPasswordAuthentication no\nAllowUsers {USER}\nPidFile {root / 'sshd.pid'}\n"
        "Subsystem sftp internal-sftp\nMaxSessions 100\nMaxStartups 100\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    with open(root / "sshd.log", "ab") as log:
        process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"sshd did not start: {(root / 'sshd.log').read_text()[-2000:]}") from None
            time.sleep(0.02)
    host_key = (root / "host_key.pub").read_text().split()
    server = SSHServer(
        "127.0.0.1",
        port,
        USER,
        (root / "client_key").read_text(),
        f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n",
        process,
    )
    try:
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)
