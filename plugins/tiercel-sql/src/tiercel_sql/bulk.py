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
            if state.get("conn") is not None:
                with contextlib.suppress(Exception):
                    state["conn"].cancel()
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
