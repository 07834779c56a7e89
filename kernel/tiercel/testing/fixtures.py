"""Pytest plugin (entry point ``pytest11: tiercel``): real services for every plugin's tests.

Session fixtures give a URL string for a running server, started on first use and
stopped at the end of the session. A missing service skips the test locally and fails
it under CI=true, saying how to get it. Nothing heavy is imported until a fixture runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so a plugin's own pytest run with --strict-markers knows it.
    config.addinivalue_line(
        "markers", "slow: end-to-end suites that take more than a few seconds (still run by .ci/run)"
    )


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


@pytest.fixture
def tiercel_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory set as TIERCEL_HOME and made the working directory, for one test."""
    home = tmp_path / "tiercel-home"
    home.mkdir()
    monkeypatch.setenv("TIERCEL_HOME", str(home))
    monkeypatch.chdir(home)
    return home
