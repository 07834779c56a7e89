"""Databases for the SQL components' tests: a SQLite file per test and the session's PostgreSQL.

``postgres_url`` comes from tiercel.testing (a private database on the machine's server);
without a server the PostgreSQL cases skip locally and fail under CI=true.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(url, table name): a SQLAlchemy URL and a table name no other test uses."""
    table = f"t_{secrets.token_hex(4)}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}", table
    return request.getfixturevalue("postgres_url"), table
