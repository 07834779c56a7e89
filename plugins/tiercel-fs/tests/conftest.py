"""Real servers: a private OpenSSH server (internal-sftp), a pyftpdlib FTP server and pyftpdlib FTPS
servers (explicit and implicit TLS, a self-signed certificate), each on a free loopback port, serving
folders of this test session."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    root = tmp_path_factory.mktemp("ftp")
    authorizer = DummyAuthorizer()
    authorizer.add_user("tiercel", "ftp-pw", str(root), perm="elradfmwMT")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "auth_failed_timeout": 0})
    server = FTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.05}, daemon=True)
    thread.start()
    yield {"port": server.address[1], "root": root}
    server.close_all()


def _self_signed(folder: Path) -> Path:
    """A PEM file with a fresh self-signed certificate for 127.0.0.1 and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    pem = folder / "server.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pem


@pytest.fixture(scope="session")
def ftps_explicit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    yield from _ftps(tmp_path_factory, "EXPLICIT")


@pytest.fixture(scope="session")
def ftps_implicit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    yield from _ftps(tmp_path_factory, "IMPLICIT")


@pytest.fixture(params=["EXPLICIT", "IMPLICIT"])
def ftps_server(request: pytest.FixtureRequest) -> dict[str, object]:
    return request.getfixturevalue(f"ftps_{request.param.lower()}")


def _ftps(tmp_path_factory: pytest.TempPathFactory, mode: str) -> Iterator[dict[str, object]]:
    """A pyftpdlib FTPS server requiring TLS on the control connection; implicit mode shakes hands first."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import TLS_FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

    root = tmp_path_factory.mktemp("ftps")
    authorizer = DummyAuthorizer()
    authorizer.add_user("tiercel", "ftp-pw", str(root), perm="elradfmwMT")
    attrs: dict[str, object] = {
        "authorizer": authorizer,
        "auth_failed_timeout": 0,
        "certfile": str(_self_signed(root.parent)),
        "tls_control_required": True,
        "tls_data_required": True,  # files and listings only over TLS (PROT P): a clear data channel is refused
    }
    if mode == "IMPLICIT":
        attrs["handle"] = lambda self: self.secure_connection(self.ssl_context)  # TLS before the banner
        attrs["handle_ssl_established"] = lambda self: TLS_FTPHandler.handle(self)  # then the 220 banner
    handler = type("Handler", (TLS_FTPHandler,), attrs)
    server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())  # its own loop: several servers, several threads
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.05}, daemon=True)
    thread.start()
    yield {"port": server.address[1], "root": root, "mode": mode}
    server.close_all()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A private OpenSSH server on a free loopback port, accepting one test key  for
    the current user; stopped by its pid."""
    import getpass
    import shutil

    from tiercel.testing.services import require

    binary = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if binary is None or shutil.which("ssh") is None:
        require("SSH server", "apt-get install openssh-server openssh-client")
    root = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "user")], check=True)
    (root / "authorized_keys").write_text((root / "user.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (root / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {root / "host"}
AuthorizedKeysFile {root / "authorized_keys"}
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile {root / "sshd.pid"}
Subsystem sftp internal-sftp
""")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([binary, "-D", "-f", str(root / "sshd_config"), "-E", str(root / "sshd.log")])
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2) as c:
                if c.recv(4).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"sshd did not start: {(root / 'sshd.log').read_text()[-2000:]}")
        time.sleep(0.02)
    yield {
        "user": getpass.getuser(),
        "port": port,
        "key": (root / "user").read_text(),
        "host_key": f"[127.0.0.1]:{port} " + (root / "host.pub").read_text(),
    }
    proc.terminate()
    proc.wait()
