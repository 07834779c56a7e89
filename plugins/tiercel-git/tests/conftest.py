"""Real repositories: bare repositories made with the git command, served over file:// and by a private
`git daemon` on a free loopback port (git://, push enabled)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@x",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@x",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, name: str, files: dict[str, str], branches: dict[str, dict[str, str]] | None = None) -> Path:
    """A bare repository *root*/<name>.git whose `main` holds *files* (and one more commit before them)."""
    work = root / f"{name}-work"
    git("init", "--quiet", "--initial-branch=main", str(work))
    (work / "HISTORY").write_text("first\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "first", cwd=work)
    for path, text in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "files", cwd=work)
    for branch, extra in (branches or {}).items():
        git("checkout", "--quiet", "-b", branch, cwd=work)
        for path, text in extra.items():
            (work / path).write_text(text)
        git("add", ".", cwd=work)
        git("commit", "--quiet", "-m", branch, cwd=work)
        git("checkout", "--quiet", "main", cwd=work)
    bare = root / f"{name}.git"
    git("clone", "--quiet", "--bare", str(work), str(bare))
    return bare


@pytest.fixture(scope="session")
def git_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(git://127.0.0.1:PORT, the folder it serves)."""
    root = tmp_path_factory.mktemp("served")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={root}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(root),
        ],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("git daemon did not start") from None
            time.sleep(0.02)
    yield f"git://127.0.0.1:{port}", root
    proc.terminate()
    proc.wait()


class Repos:
    """The helpers, for tests (conftest is not importable under --import-mode=importlib)."""

    git = staticmethod(git)
    make = staticmethod(make_repo)


@pytest.fixture(scope="session")
def repos() -> type[Repos]:
    return Repos


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A private OpenSSH server on a free loopback port, accepting one test key (with a passphrase) for
    the current user; stopped by its pid."""
    import getpass
    import shutil

    from tiercel.testing.services import require

    binary = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if binary is None or shutil.which("ssh") is None:
        require("SSH server", "apt-get install openssh-server openssh-client")
    root = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "key-pass", "-f", str(root / "user")], check=True)
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
        "url": f"ssh://{getpass.getuser()}@127.0.0.1:{port}",
        "key": (root / "user").read_text(),
        "passphrase": "key-pass",
        "host_key": f"[127.0.0.1]:{port} " + (root / "host.pub").read_text(),
    }
    proc.terminate()
    proc.wait()


class _SmartHttp(BaseHTTPRequestHandler):
    """Git's smart HTTP protocol: `git http-backend` run as a CGI per request, behind basic auth."""

    def log_message(self, *args: object) -> None:
        pass

    def _serve(self) -> None:
        import base64

        expected = "Basic " + base64.b64encode(b"bot:t0ken-s3cret").decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            **ENV,
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",  # type: ignore[attr-defined]
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REMOTE_USER": "bot",
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_HTTP_RECEIVE_PACK": "true",
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(": ")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve


@pytest.fixture(scope="session")
def git_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(http://127.0.0.1:PORT, the folder it serves): smart HTTP with basic auth (bot / t0ken-s3cret)."""
    import threading

    root = tmp_path_factory.mktemp("http-served")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SmartHttp)
    httpd.root = root  # type: ignore[attr-defined]
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()
