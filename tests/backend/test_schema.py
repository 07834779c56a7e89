"""The schema has one source (SQLAlchemy metadata); the fast-path DDL and Alembic agree with it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tiercel.backend import SCHEMA_HEAD
from tiercel.backend.db import Database, migrate
from tiercel.backend.ddl import sqlite_ddl


def _tables(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name != 'alembic_version' "
                                        "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {n: sorted((c[1], c[2].upper(), c[3], c[5]) for c in conn.execute(f"PRAGMA table_info({n})")) for n in names}


def test_generated_sqlite_ddl_is_up_to_date():
    shipped = (Path(__file__).parents[2] / "kernel/tiercel/backend/schema_sqlite.sql").read_text()
    assert shipped == sqlite_ddl(), "regenerate: python -m tiercel.backend.ddl > kernel/tiercel/backend/schema_sqlite.sql"


def test_schema_head_matches_alembic():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parents[2] / "kernel/tiercel/backend/migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_HEAD


def test_fast_bootstrap_equals_alembic_migration(tmp_path):
    Database(tmp_path / "fast.db").close()
    migrate(f"sqlite:///{tmp_path / 'migrated.db'}")
    assert _tables(tmp_path / "fast.db") == _tables(tmp_path / "migrated.db")


def test_reopening_a_home_keeps_its_data(tmp_path):
    db = Database(tmp_path / "t.db")
    db.execute("INSERT INTO kv (namespace, key, value, updated_at) VALUES ('a', 'b', '1', 0)")
    db.close()
    assert Database(tmp_path / "t.db").one("SELECT value FROM kv")[0] == "1"
