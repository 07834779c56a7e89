"""Pytest plugin (entry point ``pytest11: tiercel``): real services for every plugin's tests.

Session fixtures give a URL string for a running server, started on first use and
stopped at the end of the session. A missing service skips the test locally and fails
it under CI=true, saying how to get it. Nothing heavy is imported until a fixture runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tiercel-db", default="sqlite", choices=("sqlite", "postgresql"),
        help="Backend of the Tiercel stores for every test: sqlite (a file in each home, the default) or "
             "postgresql (a fresh database per test, on TIERCEL_TEST_POSTGRES_URL or 127.0.0.1:5432).",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so a plugin's own pytest run with --strict-markers knows it.
    config.addinivalue_line(
        "markers", "slow: end-to-end suites that take more than a few seconds (still run by .ci/run)"
    )


_exit_status = 1
_watchdog_started = False


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Let the process exit even if a test leaked a thread that never ends.

    Python joins non-daemon threads (thread-pool workers included) before exiting, so
    one blocked call would hang CI with every result already printed. Once the
    interpreter is exiting, after a grace period (TIERCEL_TEST_EXIT_GRACE seconds,
    default 60) print every thread's stack and exit with the session's status, or 1 if
    it had passed: a leaked thread is a bug. A pytest run inside a longer-lived process
    (pytester, pytest.main) is left alone: the watchdog waits for the interpreter's exit.
    """
    global _watchdog_started
    if _watchdog_started:
        return
    _watchdog_started = True
    import threading

    threading.Thread(target=_exit_watchdog, name="tiercel-exit-watchdog", daemon=True).start()


def _exit_watchdog() -> None:
    import faulthandler
    import os
    import sys
    import threading
    import time

    def exiting() -> bool:  # the main thread is in threading._shutdown, joining threads
        frame = sys._current_frames().get(threading.main_thread().ident)
        while frame is not None and frame.f_back is not None:
            frame = frame.f_back
        return frame is not None and frame.f_code is threading._shutdown.__code__

    while not exiting():
        time.sleep(0.5)
    grace = float(os.environ.get("TIERCEL_TEST_EXIT_GRACE", "60"))
    time.sleep(grace)
    status = _exit_status or 1
    sys.stderr.write(
        f"\ntiercel.testing: pytest could not exit {grace:.0f}s after the session ended: a test left "
        f"threads running (stacks below). Exiting with status {status}.\n"
    )
    faulthandler.dump_traceback(all_threads=True)
    os._exit(status)


def _serve(start: str) -> Iterator[str]:
    from tiercel.testing import services

    try:
        service = getattr(services, start)()
    except services.ServiceUnavailable as missing:
        services.require(missing.service, missing.how_to_get, missing.reason)
    with service:
        yield service.url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Kafka bootstrap address ``host:port`` (private tansu broker, topics auto-created)."""
    yield from _serve("kafka")


@pytest.fixture(scope="session")
def pulsar_url() -> Iterator[str]:
    """Pulsar service URL ``pulsar://host:port`` (private pulsar-lite broker)."""
    yield from _serve("pulsar")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """S3 and SQS endpoint ``http://host:port`` (private moto server; any credentials work)."""
    yield from _serve("moto")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL database created for this session and dropped after it."""
    yield from _serve("postgres_url")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL ``redis://host:port/db`` of a Redis of this session's own."""
    yield from _serve("redis_url")


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """RabbitMQ URL ``amqp://guest:guest@127.0.0.1:5672/`` (the machine's; name queues uniquely)."""
    yield from _serve("amqp_url")


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """MQTT URL ``mqtt://127.0.0.1:PORT`` (private mosquitto with persistence)."""
    yield from _serve("mqtt_url")


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """NATS URL ``nats://127.0.0.1:PORT`` (private nats-server with JetStream)."""
    yield from _serve("nats_url")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Flow unit tests (``*.test.yaml``) are collected like test modules: one item per test case."""
    if file_path.name.endswith((".test.yaml", ".test.yml")):
        from tiercel.flowtest import pytest_file

        return pytest_file(parent, file_path)  # type: ignore[no-any-return]
    return None


@pytest.fixture(scope="session")
def vault_server() -> Iterator[Any]:
    """A Vault API of this session's own (OpenBao dev server): ``.url``, ``.env`` (VAULT_ADDR, root VAULT_TOKEN)."""
    from tiercel.testing import services

    try:
        service = services.vault()
    except services.ServiceUnavailable as missing:
        services.require(missing.service, missing.how_to_get, missing.reason)
    with service:
        yield service


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """Docker engine address ``unix:///…/docker.sock`` holding the image tiercel/busybox:test."""
    yield from _serve("docker_host")


@pytest.fixture
def tiercel_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory set as TIERCEL_HOME and made the working directory, for one test."""
    home = tmp_path / "tiercel-home"
    home.mkdir()
    monkeypatch.setenv("TIERCEL_HOME", str(home))
    monkeypatch.chdir(home)
    return home


# --- the backend of the stores: SQLite or PostgreSQL --------------------------------------------------
_PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_admin(base: str) -> Any:
    import psycopg

    return psycopg.connect(base, autocommit=True, connect_timeout=5)


def _pg_url(base: str, name: str) -> str:
    import urllib.parse

    return urllib.parse.urlunsplit(urllib.parse.urlsplit(base)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def _tiercel_pg_template() -> Iterator[tuple[str, str]]:
    """(server URL, name of a template database migrated to the head once per session)."""
    import os
    import secrets

    base = os.environ.get("TIERCEL_TEST_POSTGRES_URL") or _PG_BASE
    try:
        admin = _pg_admin(base)
    except Exception as exc:  # noqa: BLE001 - any connection failure means: no server here
        from tiercel.testing import services

        services.require("PostgreSQL", "start a local server (Debian: apt-get install postgresql) or set "
                         "TIERCEL_TEST_POSTGRES_URL=postgresql://user:password@host:port/db", str(exc).strip())
    name = f"tiercel_tpl_{os.getpid()}_{secrets.token_hex(3)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    from tiercel.backend.postgres import PostgresDatabase

    PostgresDatabase(_pg_url(base, name), pool_size=1).close()  # migrates it
    try:
        yield base, name
    finally:
        with _pg_admin(base) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def tiercel_pg_url(_tiercel_pg_template: tuple[str, str]) -> Iterator[str]:
    """URL of a fresh PostgreSQL database at the schema's head for this test (copied from a template: fast)."""
    import secrets

    base, template = _tiercel_pg_template
    name = f"{template}_{secrets.token_hex(4)}"
    with _pg_admin(base) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _pg_url(base, name)
    finally:
        with _pg_admin(base) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def tiercel_module_db(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """For a module-scoped server: ``{"TIERCEL_DB": url}`` of a fresh PostgreSQL database kept for the module
    under ``--tiercel-db postgresql``, else ``{}`` (the home's SQLite). Pass it as the server's and the CLI's env."""
    if request.config.getoption("--tiercel-db") != "postgresql":
        yield {}
        return
    import secrets

    base, template = request.getfixturevalue("_tiercel_pg_template")
    name = f"{template}_m{secrets.token_hex(4)}"
    with _pg_admin(base) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield {"TIERCEL_DB": _pg_url(base, name)}
    finally:
        with _pg_admin(base) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def tiercel_db(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database URL the stores of this test use, exported as TIERCEL_DB (so Runtime, the CLI and a
    server subprocess all open it): ``sqlite:///…`` or a fresh ``postgresql://…``. Parametrize it with
    ``@pytest.mark.parametrize("tiercel_db", ["sqlite", "postgresql"], indirect=True)``; unparametrized
    it follows ``--tiercel-db``."""
    kind = getattr(request, "param", None) or request.config.getoption("--tiercel-db")
    if kind == "postgresql":
        url = request.getfixturevalue("tiercel_pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'tiercel-db' / 'tiercel.db'}"
    monkeypatch.setenv("TIERCEL_DB", url)
    return url


@pytest.fixture(autouse=True)
def _tiercel_db_option(request: pytest.FixtureRequest) -> None:
    """With ``--tiercel-db postgresql``, every test runs its stores on a fresh PostgreSQL database."""
    if request.config.getoption("--tiercel-db") == "postgresql" and "tiercel_db" not in request.fixturenames:
        request.getfixturevalue("tiercel_db")
