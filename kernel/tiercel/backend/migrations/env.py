"""Alembic environment: migrates any Tiercel database (SQLite or PostgreSQL)."""

from alembic import context
from sqlalchemy import create_engine

from tiercel.backend.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
connection = config.attributes.get("connection")


def run() -> None:
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()  # no connection left open (a template database must have none)


run()
