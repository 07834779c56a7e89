"""Render the SQLite DDL of the schema, so a new home is created without importing SQLAlchemy.

``python -m tiercel.backend.ddl > kernel/tiercel/backend/schema_sqlite.sql`` regenerates it;
a test keeps it equal to what the metadata compiles to.
"""

from __future__ import annotations


def sqlite_ddl() -> str:
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from tiercel.backend.schema import metadata

    dialect = sqlite.dialect()
    parts = []
    for table in metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        for index in sorted(table.indexes, key=lambda i: i.name):
            parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(sqlite_ddl(), end="")
