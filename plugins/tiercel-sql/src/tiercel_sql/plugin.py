"""Entry point of tiercel-sql: registers sql.Query, sql.Queries, sql.CopyIn, sql.CopyOut, sql.Batch, sql.duckdb.Query|Queries and sql.Trigger."""

from __future__ import annotations

from collections.abc import Callable

from tiercel import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_sql.components import DuckDBQueries, DuckDBQuery, Queries, Query

    register(Query)
    register(Queries)
    register(DuckDBQuery)
    register(DuckDBQueries)

    from tiercel_sql.bulk import Batch, CopyIn, CopyOut

    register(CopyIn)
    register(CopyOut)
    register(Batch)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel_sql.components import Trigger

    register(Trigger)
