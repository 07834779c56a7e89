"""SQL components: ``sql.Query``, ``sql.Queries``, the polling ``sql.Trigger`` and DuckDB's ``sql.duckdb.*``.

Any database SQLAlchemy has a dialect and a driver for works: SQLite and PostgreSQL out of
the box, others once their driver is installed. SQLAlchemy loads on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from tiercel import Example, PollingTrigger, RunContext, Task, TaskError, TriggerEvent

FetchType = Annotated[Literal["FETCH_ONE", "FETCH", "STORE", "NONE"],
                      BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)]


class Connection(BaseModel):
    """Where the database is and the SQL to run (shared by every SQL component)."""

    url: str = Field(description="SQLAlchemy URL (`sqlite:///data.db`, `postgresql://user@host:5432/db`, "
                                 "`mysql+pymysql://…`) or Kestra's JDBC form (`jdbc:postgresql://host:5432/db`).")
    username: str | None = Field(None, description="User name, when not in the URL.")
    password: str | None = Field(None, description="Password, when not in the URL; use `{{ secret('NAME') }}`.")
    sql: str = Field(description="The SQL. Write `:name` where a parameter goes; values come from `parameters`.")
    parameters: dict[str, Any] | None = Field(
        None, description="Values bound to the `:name` placeholders by the driver (never pasted into the SQL); "
                          "a list binds an `IN :name` list.")
    fetchSize: int = Field(10_000, ge=1, description="Rows read per round trip when storing results (STORE).")

    store: bool = Field(False, description="Kestra's older form of `fetchType: STORE` (when `fetchType` is not set).")
    fetch: bool = Field(False, description="Kestra's older form of `fetchType: FETCH` (when `fetchType` is not set).")
    fetchOne: bool = Field(False, description="Kestra's older form of `fetchType: FETCH_ONE` (when `fetchType` is not "
                                              "set).")

    def fetch_type(self) -> str:
        """``fetchType``, or what Kestra's older ``store`` / ``fetchOne`` / ``fetch`` booleans ask for."""
        if getattr(self, "fetchType", None) == type(self).model_fields["fetchType"].default:  # not set (or set so)
            for flag, kind in ((self.store, "STORE"), (self.fetchOne, "FETCH_ONE"), (self.fetch, "FETCH")):
                if flag:
                    return kind
        return str(getattr(self, "fetchType", "NONE"))


class Query(Connection, Task):
    """Run one SQL statement and, with ``fetchType``, keep what it returns.

    ``FETCH_ONE`` gives ``outputs.<id>.row``; ``FETCH`` gives ``rows`` (all in memory);
    ``STORE`` streams the rows as JSON lines into internal storage (``uri``) for large
    results; ``NONE`` keeps nothing. ``size`` counts the rows kept; a statement that changes
    data reports ``updatedRows``. A SQL error shows the database's message and the statement.
    """

    type: ClassVar[str] = "sql.Query"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.jdbc.postgresql.Query", "io.kestra.plugin.jdbc.sqlite.Query",
        "io.kestra.plugin.jdbc.mysql.Query",
        "io.kestra.plugin.jdbc.sqlserver.Query", "io.kestra.plugin.jdbc.oracle.Query",
    )
    examples: ClassVar[list[Example]] = [
        Example("Create a table, insert with parameters, read it back (SQLite, nothing to install)", """\
id: sql_query_example
namespace: company.team
tasks:
  - id: create
    type: sql.Query
    url: sqlite:///example.db
    sql: CREATE TABLE IF NOT EXISTS customers (name TEXT, country TEXT)
  - id: insert
    type: sql.Query
    url: sqlite:///example.db
    sql: INSERT INTO customers (name, country) VALUES (:name, :country)
    parameters:
      name: ada
      country: "{{ 'UK' }}"
  - id: read
    type: sql.Query
    url: sqlite:///example.db
    sql: SELECT count(*) AS n FROM customers WHERE country = :country
    parameters: {country: UK}
    fetchType: FETCH_ONE
  - id: show
    type: core.Log
    message: "{{ outputs.read.row.n }} customer(s) in the UK"
"""),
        Example("Store a large result in internal storage (PostgreSQL)", """\
id: sql_store_example
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: postgresql://postgres@127.0.0.1:5432/postgres
tasks:
  - id: export
    type: sql.Query
    url: "{{ inputs.url }}"
    sql: SELECT schemaname, tablename FROM pg_catalog.pg_tables WHERE schemaname = :schema
    parameters:
      schema: pg_catalog
    fetchType: STORE
  - id: show
    type: core.Log
    message: "{{ outputs.export.size }} rows in {{ outputs.export.uri }}"
""", run=False),
    ]

    fetchType: FetchType = Field("NONE", description="What to keep of the rows: FETCH_ONE, FETCH, STORE or NONE.")
    inputFile: str | None = Field(
        None, description="MySQL/MariaDB (Kestra's): a `tiercel://` file copied next to the task, whose local path "
                          "`{{ inputFile }}` gives in the SQL, for `LOAD DATA LOCAL INFILE '{{ inputFile }}' INTO TABLE …`.")
    autoCommit: bool = Field(
        True, description="Commit as the statement runs (the driver's autocommit mode, needed for e.g. VACUUM); "
                          "false runs it in a transaction committed at the end.")

    @model_validator(mode="before")
    @classmethod
    def _input_file_placeholder(cls, data: Any) -> Any:
        """``{{ inputFile }}`` is no variable: it stays in the SQL until the file has a local path."""
        if isinstance(data, dict) and isinstance(data.get("sql"), str) and data.get("inputFile"):
            from tiercel_sql._db import INPUT_FILE_TOKEN

            data = {**data, "sql": re.sub(r"\{\{-?\s*inputFile\s*-?\}\}", INPUT_FILE_TOKEN, data["sql"])}
        return data

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from tiercel_sql._db import run

        (output,) = await run(ctx, self, [self.sql], transaction=not self.autoCommit, fetch_type=self.fetch_type(),
                              fetch_size=self.fetchSize)
        return output


class Queries(Connection, Task):
    """Run several SQL statements, separated by ``;``, in one transaction (by default).

    Any failure rolls every statement back. ``outputs.<id>.outputs`` lists each statement's
    outputs (``rows``, ``row``, ``uri``, ``size``, ``updatedRows``) in order.
    """

    type: ClassVar[str] = "sql.Queries"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.jdbc.postgresql.Queries", "io.kestra.plugin.jdbc.sqlite.Queries",
        "io.kestra.plugin.jdbc.mysql.Queries",
        "io.kestra.plugin.jdbc.sqlserver.Queries", "io.kestra.plugin.jdbc.oracle.Queries",
    )
    examples: ClassVar[list[Example]] = [
        Example("A transfer that either fully happens or not at all", """\
id: sql_queries_example
namespace: company.team
tasks:
  - id: setup
    type: sql.Queries
    url: sqlite:///bank.db
    sql: |
      CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, balance INTEGER);
      INSERT OR REPLACE INTO accounts VALUES ('a', 100), ('b', 0);
  - id: transfer
    type: sql.Queries
    url: sqlite:///bank.db
    parameters: {amount: 30}
    fetchType: FETCH
    sql: |
      UPDATE accounts SET balance = balance - :amount WHERE id = 'a';
      UPDATE accounts SET balance = balance + :amount WHERE id = 'b';
      SELECT id, balance FROM accounts ORDER BY id;
  - id: show
    type: core.Log
    message: "balances: {{ outputs.transfer.outputs[2].rows | toJson }}"
"""),
    ]

    fetchType: FetchType = Field("NONE", description="What to keep of the rows of each statement that returns rows.")
    transaction: bool = Field(True, description="Run all statements in one transaction (false: commit each as it runs).")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from tiercel_sql._db import run, split_statements

        statements = split_statements(self.sql)
        if not statements:
            raise TaskError("property `sql`: no statement found")
        return {"outputs": await run(ctx, self, statements, transaction=self.transaction, fetch_type=self.fetch_type(),
                                     fetch_size=self.fetchSize)}


class Trigger(Connection, PollingTrigger):
    """Run a query every ``interval``; start an execution when it returns rows.

    The execution gets ``trigger.rows`` and ``trigger.size`` (``trigger.row`` with FETCH_ONE,
    ``trigger.uri`` with STORE). The same rows never start two executions: their hash is the
    event key. Make the query return only new work (a status column, a watermark).
    """

    type: ClassVar[str] = "sql.Trigger"
    aliases: ClassVar[tuple[str, ...]] = (
        "io.kestra.plugin.jdbc.postgresql.Trigger", "io.kestra.plugin.jdbc.sqlite.Trigger",
        "io.kestra.plugin.jdbc.mysql.Trigger", "io.kestra.plugin.jdbc.duckdb.Trigger",
        "io.kestra.plugin.jdbc.sqlserver.Trigger", "io.kestra.plugin.jdbc.oracle.Trigger",
    )
    examples: ClassVar[list[Example]] = [
        Example("Process new orders as they appear", """\
id: sql_trigger_example
namespace: company.team
tasks:
  - id: handle
    type: core.Log
    message: "{{ trigger.size }} new order(s): {{ trigger.rows | toJson }}"
triggers:
  - id: new_orders
    type: sql.Trigger
    url: sqlite:///shop.db
    interval: PT30S
    sql: SELECT id, total FROM orders WHERE processed = 0 ORDER BY id
""", run=False),
    ]

    fetchType: Annotated[Literal["FETCH_ONE", "FETCH", "STORE"],
                         BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)] = Field(
        "FETCH", description="How the rows reach the execution: FETCH (`trigger.rows`), FETCH_ONE (`trigger.row`) or "
                             "STORE (`trigger.uri`, a JSON-lines file).")

    async def poll(self, ctx: RunContext) -> TriggerEvent | None:
        from tiercel_sql._db import run

        me = self  # properties arrive rendered (the trigger runtime renders them)
        (output,) = await run(ctx, me, [me.sql], transaction=False, fetch_type=me.fetch_type(), fetch_size=me.fetchSize)
        if not output.get("size"):
            return None
        if "uri" in output:
            with ctx.open_file(output["uri"]) as stored:
                digest = hashlib.file_digest(stored, "sha256").hexdigest()
        else:
            digest = hashlib.sha256(json.dumps(output.get("rows", output.get("row")), sort_keys=True).encode()).hexdigest()
        return TriggerEvent(variables=output, key=digest[:32])




class _DuckDB(BaseModel):
    """DuckDB's extras (Kestra's ``jdbc.duckdb`` tasks): an in-memory default, files in and out."""

    url: str = Field("jdbc:duckdb:", description="DuckDB database: `jdbc:duckdb:` (the default) or `duckdb:///:memory:` "
                                                 "in memory, `jdbc:duckdb:/path/file.db` or `duckdb:///file.db` a file.")
    inputFiles: dict[str, str] | None = Field(
        None, description="Files written into the task's working directory before the SQL runs: file name → text, or "
                          "a `tiercel://` (or `kestra://`) URI of a stored file. The SQL reads them by name "
                          "(`read_csv_auto('data.csv')`) or as `{{ workingDir }}/data.csv`.")
    outputFiles: list[str] | None = Field(
        None, description="Names of files the SQL writes (`COPY … TO '{{ outputFiles.name }}'`), uploaded to internal "
                          "storage afterwards: `outputs.<id>.outputFiles.name` is the URI.")

    @model_validator(mode="before")
    @classmethod
    def _working_dir_placeholders(cls, data: Any) -> Any:
        """``{{ workingDir }}`` and ``{{ outputFiles.x }}`` are paths known only when the task runs."""
        if isinstance(data, dict) and isinstance(data.get("sql"), str):
            from tiercel_sql._db import OUTPUT_FILE_TOKEN, WORKING_DIR_TOKEN

            sql = re.sub(r"\{\{-?\s*workingDir\s*-?\}\}", WORKING_DIR_TOKEN, data["sql"])
            sql = re.sub(r"\{\{-?\s*outputFiles(?:\.(\w[\w.-]*?)|\[\s*['\"]([^'\"]+)['\"]\s*\])\s*-?\}\}",
                         lambda m: OUTPUT_FILE_TOKEN.format(m.group(1) or m.group(2)), sql)
            data = {**data, "sql": sql}
        return data

    async def _run_duckdb(self, ctx: RunContext, statements: list[str], transaction: bool,
                          fetch_type: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
        from tiercel_sql._db import duckdb_files, run

        statements, collect = await asyncio.to_thread(duckdb_files, ctx, self, statements)
        # DuckDB's SQLAlchemy driver has no autocommit mode: the statements share one transaction, committed at the end
        outputs = await run(ctx, self, statements, transaction=True, fetch_type=fetch_type,
                            fetch_size=getattr(self, "fetchSize", 10_000))
        return outputs[1:], await asyncio.to_thread(collect)  # outputs[0]: the SET file_search_path


class DuckDBQuery(_DuckDB, Query):
    """Run DuckDB SQL, in memory unless ``url`` names a database file, on files given in ``inputFiles``.

    Several statements separated by ``;`` run on one connection (the tables of an in-memory
    database live until the last one); the outputs (``row``, ``rows``, ``uri``, ``size``) are
    the last statement's. Files the SQL writes and ``outputFiles`` names come back as
    ``outputs.<id>.outputFiles``.
    """

    type: ClassVar[str] = "sql.duckdb.Query"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.jdbc.duckdb.Query",)
    examples: ClassVar[list[Example]] = [
        Example("Query a CSV file in memory and export a summary (nothing to set up)", """\
id: duckdb_example
namespace: company.team
tasks:
  - id: query
    type: sql.duckdb.Query
    inputFiles:
      orders.csv: |
        customer_name,total
        Michael,12.5
        Ada,30
        Michael,7
    sql: |
      CREATE TABLE orders AS SELECT * FROM read_csv_auto('{{ workingDir }}/orders.csv', header=True);
      COPY (SELECT customer_name, sum(total) AS spent FROM orders GROUP BY 1 ORDER BY 1)
        TO '{{ outputFiles.summary }}' (HEADER, DELIMITER ',');
      SELECT count(*) AS n FROM orders WHERE customer_name = 'Michael';
    outputFiles:
      - summary
    fetchType: FETCH_ONE
  - id: show
    type: core.Log
    message: "{{ outputs.query.row.n }} orders by Michael; summary in {{ outputs.query.outputFiles.summary }}"
"""),
    ]

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from tiercel_sql._db import split_statements

        statements = split_statements(self.sql)
        if not statements:
            raise TaskError("property `sql`: no statement found")
        outputs, files = await self._run_duckdb(ctx, statements, not self.autoCommit, self.fetch_type())
        last = next((o for o in reversed(outputs) if "row" in o or "rows" in o or "uri" in o), outputs[-1])
        return {**last, **({"outputFiles": files} if self.outputFiles else {})}


class DuckDBQueries(_DuckDB, Queries):
    """Run several DuckDB statements (in memory by default) on files given in ``inputFiles``.

    ``outputs.<id>.outputs`` lists each statement's outputs in order; ``outputFiles`` as for
    ``sql.duckdb.Query``.
    """

    type: ClassVar[str] = "sql.duckdb.Queries"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.jdbc.duckdb.Queries",)
    examples: ClassVar[list[Example]] = [
        Example("Load JSON lines and keep the result in internal storage", """\
id: duckdb_queries_example
namespace: company.team
tasks:
  - id: load
    type: sql.duckdb.Queries
    inputFiles:
      events.jsonl: |
        {"kind": "click", "n": 3}
        {"kind": "view", "n": 5}
    sql: |
      CREATE TABLE events AS SELECT * FROM read_json_auto('events.jsonl');
      SELECT kind, n FROM events ORDER BY kind;
    store: true
  - id: show
    type: core.Log
    message: "{{ outputs.load.outputs[1].size }} rows in {{ outputs.load.outputs[1].uri }}"
"""),
    ]

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from tiercel_sql._db import split_statements

        statements = split_statements(self.sql)
        if not statements:
            raise TaskError("property `sql`: no statement found")
        outputs, files = await self._run_duckdb(ctx, statements, self.transaction, self.fetch_type())
        return {"outputs": outputs, **({"outputFiles": files} if self.outputFiles else {})}
