"""Persistence: the schema (SQLAlchemy metadata, Alembic migrations) and the repository."""

#: The Alembic head this code expects; a test keeps it equal to the migrations' head.
SCHEMA_HEAD = "0002"
