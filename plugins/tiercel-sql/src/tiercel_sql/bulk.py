"""PostgreSQL bulk paths: ``sql.CopyIn`` (a stored file into a table) and ``sql.CopyOut`` (a table or a
query into a stored file), through ``COPY … FROM STDIN`` / ``TO STDOUT`` with psycopg 3, streamed in
1 MiB chunks so memory stays flat whatever the size."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, Field

from tiercel import Example, RunContext, StorageError, Task, TaskError

CHUNK = 1 << 20
Format = Annotated[Literal["TEXT", "CSV", "BINARY"], BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)]
KESTRA = "io.kestra.plugin.jdbc.postgresql"


class _Copy(BaseModel):
    url: str = Field(
        description="PostgreSQL URL (`postgresql://user@host:5432/db`, or Kestra's `jdbc:postgresql://…`)."
    )
    username: str | None = Field(None, description="User name, when not in the URL.")
    password: str | None = Field(None, description="Password, when not in the URL; use `{{ secret('NAME') }}`.")
    format: Format = Field("TEXT", description="COPY format: TEXT (tab-separated), CSV or BINARY.")
    header: bool = Field(False, description="The file has (or gets) a header line (CSV only).")
    delimiter: str | None = Field(None, max_length=1, description="Column separator (tab for TEXT, `,` for CSV).")
    quote: str | None = Field(None, max_length=1, description='Quote character (CSV; `"` by default).')
    escape: str | None = Field(None, max_length=1, description="Escape character (CSV; the quote by default).")
    nullString: str | None = Field(None, description="How NULL is written (`\\N` for TEXT, empty for CSV).")
    encoding: str | None = Field(None, description="Encoding of the file (the client's by default).")

    def options(self) -> Any:
        from psycopg import sql

        opts = [sql.SQL("FORMAT {}").format(sql.SQL(self.format))]
        if self.header:
            opts.append(sql.SQL("HEADER true"))
        for name, value in (
            ("DELIMITER", self.delimiter),
            ("QUOTE", self.quote),
            ("ESCAPE", self.escape),
            ("NULL", self.nullString),
            ("ENCODING", self.encoding),
        ):
            if value is not None:
                opts.append(sql.SQL(name + " {}").format(sql.Literal(value)))
        return sql.SQL(", ").join(opts)

    def conninfo(self) -> str:
        from tiercel_sql._db import database_url

        url = database_url(self.url, self.username, self.password)
        if url.get_backend_name() != "postgresql":
            raise TaskError(f"COPY needs PostgreSQL; `url` is {url.get_backend_name()}")
        return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _target(table: str, columns: list[str] | None) -> Any:
    from psycopg import sql

    name = sql.Identifier(*table.split("."))
    return sql.SQL("{} ({})").format(name, sql.SQL(", ").join(map(sql.Identifier, columns))) if columns else name


async def _in_thread(work: Any, state: dict[str, Any]) -> Any:
    """Run blocking *work* on a thread; a cancellation cancels the server-side COPY, again until the thread
    returns (a cancel that lands before the COPY started would otherwise let it run on)."""
    done = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        state["stop"] = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not done.done() and loop.time() < deadline:
            conn = state.get("conn")
            stop = getattr(conn, "cancel", None) or getattr(conn, "interrupt", None)  # psycopg / sqlite3
            if stop is not None:
                with contextlib.suppress(Exception):
                    stop()
            await asyncio.wait([done], timeout=0.1)
        raise


def _count(cur: Any) -> int:
    """Rows copied, from the server's `COPY n` status (psycopg leaves rowcount at -1 after COPY FROM)."""
    status = (cur.statusmessage or "").split()
    return int(status[1]) if len(status) == 2 and status[0] == "COPY" else max(cur.rowcount, 0)


def _fail(exc: Exception, what: str) -> TaskError:
    message = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc).strip()
    context = getattr(getattr(exc, "diag", None), "context", None)
    return TaskError(f"{what} failed: {message}" + (f" ({context.strip()})" if context else ""))


class CopyIn(_Copy, Task):
    """Load a file from internal storage into a PostgreSQL table with `COPY … FROM STDIN`; outputs `rowCount`.

    The file streams to the server in 1 MiB chunks; a bad line fails the task with PostgreSQL's message,
    which names the line, and nothing is loaded (COPY is one transaction).
    """

    type: ClassVar[str] = "sql.CopyIn"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.CopyIn",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Load a CSV file into a table",
            """\
id: copy_in_example
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: postgresql://postgres@127.0.0.1:5432/postgres
tasks:
  - id: export
    type: scripts.Shell
    commands: ["printf 'id,name\\\\n1,ada\\\\n2,grace\\\\n' > people.csv"]
    outputFiles: [people.csv]
  - id: table
    type: sql.Query
    url: "{{ inputs.url }}"
    sql: CREATE TABLE IF NOT EXISTS people_example (id int, name text)
  - id: load
    type: sql.CopyIn
    url: "{{ inputs.url }}"
    table: people_example
    from: "{{ outputs.export.outputFiles['people.csv'] }}"
    format: CSV
    header: true
""",
            run=False,
        )
    ]

    table: str = Field(description="Table to load (`schema.table` allowed).")
    columns: list[str] | None = Field(None, description="Columns the file's fields go to, in order; all by default.")
    from_: str = Field(alias="from", description="The `tiercel://` file to load.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import psycopg
        from psycopg import sql

        statement = sql.SQL("COPY {} FROM STDIN ({})").format(_target(self.table, self.columns), self.options())
        state: dict[str, Any] = {}

        def work() -> int:
            try:
                with ctx.open_file(self.from_) as stream, psycopg.connect(self.conninfo()) as conn:
                    state["conn"] = conn
                    if state.get("stop"):
                        raise TaskError("cancelled")
                    with conn.cursor() as cur:
                        with cur.copy(statement) as copy:
                            while chunk := stream.read(CHUNK):
                                copy.write(chunk)
                        return _count(cur)
            except (FileNotFoundError, StorageError) as exc:
                raise TaskError(f"`from`: cannot read {self.from_} ({exc})") from None
            except psycopg.Error as exc:
                raise _fail(exc, f"COPY into {self.table}") from None

        count = await _in_thread(work, state)
        ctx.metric("records", count)
        ctx.logger.info("copied %d rows into %s", count, self.table)
        return {"rowCount": count}


class CopyOut(_Copy, Task):
    """Write a PostgreSQL table, or a query's rows, into internal storage with `COPY … TO STDOUT`; outputs
    `uri` and `rowCount`. Streamed: memory stays flat whatever the size."""

    type: ClassVar[str] = "sql.CopyOut"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.CopyOut",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Export a query as CSV",
            """\
id: copy_out_example
namespace: company.team
inputs:
  - id: url
    type: STRING
    defaults: postgresql://postgres@127.0.0.1:5432/postgres
tasks:
  - id: export
    type: sql.CopyOut
    url: "{{ inputs.url }}"
    sql: SELECT n, n * n AS square FROM generate_series(1, 10) AS n
    format: CSV
    header: true
""",
            run=False,
        )
    ]

    table: str | None = Field(None, description="Table to export; or give `sql`.")
    columns: list[str] | None = Field(None, description="Columns of `table` to export; all by default.")
    sql: str | None = Field(None, description="A query whose rows are exported, instead of `table`.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import psycopg
        from psycopg import sql

        if (self.table is None) == (self.sql is None):
            raise TaskError("set exactly one of `table` or `sql`")
        source = _target(self.table, self.columns) if self.table else sql.SQL("({})").format(sql.SQL(self.sql))
        statement = sql.SQL("COPY {} TO STDOUT ({})").format(source, self.options())
        target = ctx.working_dir / ("export." + {"TEXT": "tsv", "CSV": "csv", "BINARY": "bin"}[self.format])
        state: dict[str, Any] = {}

        def work() -> int:
            try:
                with psycopg.connect(self.conninfo()) as conn, open(target, "wb") as out:
                    state["conn"] = conn
                    if state.get("stop"):
                        raise TaskError("cancelled")
                    with conn.cursor() as cur:
                        with cur.copy(statement) as copy:
                            for chunk in copy:
                                out.write(chunk)
                        return _count(cur)
            except psycopg.Error as exc:
                raise _fail(exc, f"COPY from {self.table or 'the query'}") from None

        count = await _in_thread(work, state)
        ctx.metric("records", count)
        return {"uri": await asyncio.to_thread(ctx.put_file, target, target.name), "rowCount": count}


def _plain(value: Any) -> Any:
    """An Ion value as the plain Python type drivers expect (they refuse amazon.ion's subclasses)."""
    import datetime as dt
    from decimal import Decimal

    if value is None or type(value).__name__ == "IonPyNull" or getattr(value, "is_null", False):
        return None
    for kind in (bool, int, float, str, bytes, Decimal):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, dt.datetime):
        return dt.datetime.fromisoformat(value.isoformat())
    return str(value)


def _rows(stream: Any, kind: str) -> Any:
    """The rows of a stored file, one at a time: Ion (Kestra's row format), CSV with a header, or JSON lines."""
    import io
    import json

    if kind == "ion":
        try:
            from amazon.ion import simpleion
        except ImportError:
            raise TaskError("reading Ion rows needs the `amazon-ion` package (pip install tiercel-serdes)") from None
        for value in simpleion.load(stream, single_value=False, parse_eagerly=False):
            yield (
                {str(k): _plain(v) for k, v in value.items()} if hasattr(value, "items") else [_plain(v) for v in value]
            )
    elif kind == "csv":
        import csv

        yield from csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8", newline=""))
    else:
        for number, line in enumerate(io.TextIOWrapper(stream, encoding="utf-8"), 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise TaskError(f"`from`: line {number} is not JSON ({exc})") from None


class Batch(Task):
    """Insert the rows of a stored file into any database, `chunk` rows per round trip (executemany), each
    chunk committed as it goes; outputs `rowCount`. Rows may be Ion (Kestra's format; needs
    `amazon-ion`), CSV with a header, or JSON lines, told by `format` or the file's extension."""

    type: ClassVar[str] = "sql.Batch"
    aliases: ClassVar[tuple[str, ...]] = tuple(
        f"io.kestra.plugin.jdbc.{db}.Batch" for db in ("postgresql", "mysql", "sqlite", "duckdb", "sqlserver", "oracle")
    )
    examples: ClassVar[list[Example]] = [
        Example(
            "Insert JSON-lines rows into SQLite",
            """\
id: batch_example
namespace: company.team
tasks:
  - id: rows
    type: scripts.Shell
    commands:
      - |
        printf '{"id": 1, "name": "ada"}\\n{"id": 2, "name": "grace"}\\n' > people.jsonl
    outputFiles: [people.jsonl]
  - id: table
    type: sql.Query
    url: sqlite:///batch_example.db
    sql: CREATE TABLE IF NOT EXISTS people (id INTEGER, name TEXT)
  - id: insert
    type: sql.Batch
    url: sqlite:///batch_example.db
    from: "{{ outputs.rows.outputFiles['people.jsonl'] }}"
    table: people
    columns: [id, name]
""",
        )
    ]

    url: str = Field(
        description="SQLAlchemy URL (`sqlite:///data.db`, `postgresql://…`, `mysql+pymysql://…`) or "
        "Kestra's `jdbc:` form."
    )
    username: str | None = Field(None, description="User name, when not in the URL.")
    password: str | None = Field(None, description="Password, when not in the URL; use `{{ secret('NAME') }}`.")
    from_: str = Field(alias="from", description="The `tiercel://` file of rows.")
    format: Literal["ION", "CSV", "JSONL"] | None = Field(
        None, description="Row format; from the extension when omitted (`.ion`, `.csv`, else JSON lines)."
    )
    table: str | None = Field(None, description="Table to insert into (with `columns`); or give `sql`.")
    columns: list[str] | None = Field(
        None,
        description="Columns filled, in order; a row's values are taken by these "
        "names (maps) or positions (lists). All of the first row's keys "
        "when omitted.",
    )
    sql: str | None = Field(
        None,
        description="The INSERT, with `?` (Kestra's positional form, filled in `columns` "
        "order) or `:name` placeholders; instead of `table`.",
    )
    chunk: int = Field(1000, ge=1, description="Rows sent per round trip and committed together.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        state: dict[str, Any] = {}
        count = await _in_thread(lambda: self._insert(ctx, state), state)
        ctx.metric("records", count)
        ctx.logger.info("inserted %d rows", count)
        return {"rowCount": count}

    def _insert(self, ctx: RunContext, state: dict[str, Any]) -> int:
        import re

        from sqlalchemy import create_engine, exc, text
        from sqlalchemy.pool import NullPool

        from tiercel_sql._db import database_url, shown

        if (self.table is None) == (self.sql is None):
            raise TaskError("set exactly one of `table` (with `columns`) or `sql`")
        kind = (self.format or "").lower() or {"ion": "ion", "csv": "csv"}.get(
            self.from_.rsplit(".", 1)[-1].lower(), "jsonl"
        )
        url = database_url(self.url, self.username, self.password)
        engine = create_engine(url, poolclass=NullPool)
        count, statement, names = 0, None, self.columns
        try:
            with ctx.open_file(self.from_) as stream, engine.connect() as conn:
                state["conn"] = conn.connection.dbapi_connection
                batch: list[dict[str, Any]] = []
                for row in _rows(stream, kind):
                    if state.get("stop"):
                        raise TaskError("cancelled")
                    if names is None:
                        names = list(row) if isinstance(row, dict) else [f"c{i}" for i in range(len(row))]
                    if statement is None:
                        statement = self._statement(names, re, text)
                    values = [row.get(n) for n in names] if isinstance(row, dict) else list(row)
                    batch.append(
                        {f"p{i}": v for i, v in enumerate(values)}
                        if statement[1]
                        else dict(zip(names, values, strict=False))
                    )
                    if len(batch) == self.chunk:
                        count += self._flush(conn, statement[0], batch)
                if batch:
                    count += self._flush(conn, statement[0], batch)
        except (FileNotFoundError, StorageError) as error:
            raise TaskError(f"`from`: cannot read {self.from_} ({error})") from None
        except exc.DBAPIError as error:
            orig = getattr(error, "orig", error)
            raise TaskError(
                f"{url.get_backend_name()} error after {count} rows: {' '.join(str(orig).split())} ({shown(url)})"
            ) from None
        finally:
            engine.dispose()
        return count

    def _statement(self, names: list[str], re: Any, text: Any) -> tuple[Any, bool]:
        """(the INSERT, whether it takes positional `?` parameters, renamed :p0, :p1…)."""
        if self.sql is None:
            columns = ", ".join(f'"{n}"' for n in names)
            return text(
                f"INSERT INTO {self.table} ({columns}) VALUES ({', '.join(f':p{i}' for i in range(len(names)))})"
            ), True
        if "?" in self.sql:
            counter = iter(range(10_000))
            return text(re.sub(r"\?", lambda _: f":p{next(counter)}", self.sql)), True
        return text(self.sql), False

    @staticmethod
    def _flush(conn: Any, statement: Any, batch: list[dict[str, Any]]) -> int:
        with conn.begin():
            conn.execute(statement, batch)
        size = len(batch)
        batch.clear()
        return size
