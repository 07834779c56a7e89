"""Running SQL on SQLAlchemy for the SQL components (imported when a query first runs).

Parameters are always bound (``:name`` in the SQL, values passed to the driver), never
formatted into the text. Rows become JSON-friendly dicts. STORE streams rows, ``fetchSize``
at a time, into a JSON-lines file that is uploaded to internal storage.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import re
import shutil
import tempfile
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tiercel import RunContext, TaskError

#: Seconds a cancelled query's thread gets to return after its statement is interrupted.
STOP_GRACE = 5.0
#: Characters of a failing statement quoted in the error.
STATEMENT_EXCERPT = 1000
#: PostgreSQL's dollar quoting: ``$$ … $$`` or ``$tag$ … $tag$`` (not ``$1`` parameters).
DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


#: What ``{{ inputFile }}`` in a query's SQL becomes before rendering: the local path once the file is there.
INPUT_FILE_TOKEN = "\x00tiercel-input-file\x00"


#: What ``{{ workingDir }}`` and ``{{ outputFiles.<name> }}`` in DuckDB SQL become before rendering.
WORKING_DIR_TOKEN = "\x00tiercel-working-dir\x00"
OUTPUT_FILE_TOKEN = "\x00tiercel-output-file:{}\x00"


def duckdb_files(ctx: RunContext, spec: Any, statements: list[str]) -> tuple[list[str], Any]:
    """Write ``inputFiles`` into the task's working directory; point the SQL at it.

    Returns the statements (a ``SET file_search_path`` first, so files are read by bare name) and a
    function that uploads ``outputFiles`` afterwards.
    """
    folder = Path(ctx.working_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in (spec.inputFiles or {}).items():
        target = (folder / name).resolve()
        if folder.resolve() not in target.parents:
            raise TaskError(f"property `inputFiles`: {name!r} is outside the working directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if value.startswith(("tiercel://", "kestra://")):
            with ctx.open_file(value) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            target.write_text(value, encoding="utf-8")
    names = list(spec.outputFiles or [])

    def place(sql: str) -> str:
        sql = sql.replace(WORKING_DIR_TOKEN, str(folder))
        return re.sub("\x00tiercel-output-file:([^\x00]+)\x00", lambda m: str(folder / m.group(1)), sql)

    for statement in statements:
        for name in re.findall("\x00tiercel-output-file:([^\x00]+)\x00", statement):
            if name not in names:
                raise TaskError(f"`{{{{ outputFiles.{name} }}}}` in the SQL: {name!r} is not listed in `outputFiles`")

    def collect() -> dict[str, str]:
        found = {}
        for name in names:
            path = folder / name
            if not path.is_file():
                raise TaskError(f"output file {name!r} was not written by the SQL (expected at {path})")
            found[name] = ctx.put_file(path, name)
        return found

    search = "SET file_search_path = '" + str(folder).replace("'", "''") + "'"
    return [search] + [place(s) for s in statements], collect


def database_url(url: str, username: str | None = None, password: str | None = None) -> Any:
    """A SQLAlchemy URL from an SQLAlchemy or a Kestra JDBC URL, with the credentials set."""
    from sqlalchemy.engine import make_url

    if url.startswith("jdbc:"):  # Kestra's form: jdbc:postgresql://host/db?user=…, jdbc:sqlite:path
        url = url[len("jdbc:"):]
        if url.startswith("duckdb:") and not url.startswith("duckdb://"):  # jdbc:duckdb: is in memory
            path = url[len("duckdb:"):]
            url = "duckdb:///:memory:" if path in ("", ":memory:") else f"duckdb:///{path}"
        if url.startswith("sqlite:") and not url.startswith("sqlite://"):
            path = url[len("sqlite:"):]
            url = "sqlite://" if path in ("", ":memory:") else f"sqlite:///{path}"
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres") and importlib.util.find_spec("psycopg") is not None:
        url = f"postgresql+psycopg{sep}{rest}"
    elif scheme in ("mysql", "mariadb") and importlib.util.find_spec("pymysql") is not None:
        url = f"{scheme}+pymysql{sep}{rest}"
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise TaskError(f"property `url`: {exc} (expected e.g. sqlite:///data.db or postgresql://user@host/db)") from None
    query = dict(parsed.query)
    user = username or query.pop("user", None) or parsed.username
    secret = password or query.pop("password", None) or parsed.password
    return parsed.set(username=user, password=secret, query=query)


def shown(url: Any) -> str:
    return url.render_as_string(hide_password=True)


def split_statements(sql: str) -> list[str]:
    """Split a script on top-level ``;`` (quotes, comments and ``$$`` bodies respected)."""
    statements, current, i, n = [], [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = i + 1
            while end < n and not (sql[end] == ch and (end + 1 >= n or sql[end + 1] != ch)):
                end += 2 if sql[end] == ch else 1
            current.append(sql[i:end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            current.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            current.append(sql[i:end])
            i = end
        elif ch == "$" and (match := DOLLAR_QUOTE.match(sql, i)):
            tag = match.group(0)
            end = sql.find(tag, match.end())
            end = n if end < 0 else end + len(tag)
            current.append(sql[i:end])
            i = end
        elif ch == ";":
            statements.append("".join(current))
            current = []
            i += 1
        else:
            current.append(ch)
            i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    lines = [line for line in statement.splitlines() if not line.strip().startswith("--")]
    return bool("".join(lines).strip())


def jsonable(value: Any) -> Any:
    """A database value as JSON: decimals as numbers, dates as ISO text, bytes as base64."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    return str(value)


class Interrupt:
    """Stops the statement running on another thread: ``interrupt()`` for SQLite, ``cancel()`` for PostgreSQL."""

    def __init__(self) -> None:
        self.raw: Any = None
        self.fired = False

    def attach(self, raw: Any) -> None:
        self.raw = raw
        if self.fired:
            self.fire()

    def fire(self) -> None:
        self.fired = True
        stop = getattr(self.raw, "interrupt", None) or getattr(self.raw, "cancel", None)
        if stop is not None:
            with contextlib.suppress(Exception):
                stop()


async def run(ctx: RunContext, spec: Any, statements: list[str], **kw: Any) -> list[dict[str, Any]]:
    """:func:`execute` on a thread; a cancellation (timeout, kill) interrupts the running statement."""
    interrupt = Interrupt()
    work = asyncio.ensure_future(asyncio.to_thread(execute, ctx, spec, statements, interrupt=interrupt, **kw))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        # Interrupt until the thread gives up: a statement that had not started yet when the
        # first interrupt came would otherwise run on (an interrupt only stops a running one).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_GRACE
        while not work.done() and loop.time() < deadline:
            interrupt.fire()
            await asyncio.wait([work], timeout=0.1)
        raise


def execute(ctx: RunContext, spec: Any, statements: list[str], *, transaction: bool, fetch_type: str,
            fetch_size: int = 10_000, interrupt: Interrupt | None = None) -> list[dict[str, Any]]:
    """Run *statements* on one connection; return one output dict per statement.

    With *transaction* they share one transaction, committed at the end and rolled back on
    any error; otherwise each is committed as it runs (the driver's autocommit mode).
    """
    from sqlalchemy import create_engine, exc
    from sqlalchemy.pool import NullPool

    url = database_url(spec.url, spec.username, spec.password)
    local_file = getattr(spec, "inputFile", None)
    connect_args: dict[str, Any] = {}
    if local_file:
        if url.get_backend_name() not in ("mysql", "mariadb"):
            raise TaskError(f"`inputFile` needs MySQL or MariaDB (LOAD DATA LOCAL INFILE); `url` is {url.get_backend_name()}")
        path = Path(ctx.working_dir) / "input-file"
        with ctx.open_file(local_file) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        statements = [s.replace(INPUT_FILE_TOKEN, str(path).replace("'", "''")) for s in statements]
        connect_args["local_infile"] = True
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise TaskError(f"cannot use {shown(url)}: {error} (is the database driver installed?)") from None
    try:
        try:
            connection = engine.connect()
        except exc.DBAPIError as error:
            raise TaskError(f"cannot connect to {shown(url)}: {_message(error)}") from None
        transaction = transaction or fetch_type == "STORE"  # server-side cursors live in a transaction
        if interrupt is not None:
            interrupt.attach(connection.connection.dbapi_connection)
        with connection:
            if not transaction:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            outputs = []
            with connection.begin() if transaction else contextlib.nullcontext():
                for index, statement in enumerate(statements):
                    if interrupt is not None and interrupt.fired:
                        raise TaskError("cancelled")
                    outputs.append(_one(ctx, connection, statement, spec.parameters or {}, fetch_type, fetch_size,
                                        f"rows-{index + 1}.jsonl" if len(statements) > 1 else "rows.jsonl"))
            return outputs
    finally:
        engine.dispose()


def _one(ctx: RunContext, connection: Any, statement: str, parameters: dict[str, Any], fetch_type: str,
         fetch_size: int, store_name: str) -> dict[str, Any]:
    from sqlalchemy import bindparam, exc, text

    clause = text(statement)
    names = set(clause.compile().params)
    params = {k: v for k, v in parameters.items() if k in names}
    expanding = [bindparam(k, expanding=True) for k, v in params.items() if isinstance(v, (list, tuple))]
    if expanding:
        clause = clause.bindparams(*expanding)
    options = {"yield_per": fetch_size} if fetch_type == "STORE" else {}
    try:
        result = connection.execute(clause, params, execution_options=options)
        output: dict[str, Any] = {}
        if not result.returns_rows:
            if result.rowcount is not None and result.rowcount >= 0:
                output["updatedRows"] = result.rowcount
            return output
        if fetch_type == "FETCH_ONE":
            row = result.mappings().first()
            output.update(row=None if row is None else _row(row), size=0 if row is None else 1)
        elif fetch_type == "FETCH":
            rows = [_row(r) for r in result.mappings()]
            output.update(rows=rows, size=len(rows))
        elif fetch_type == "STORE":
            output.update(_store(ctx, result, store_name))
        else:
            result.close()
        return output
    except exc.DBAPIError as error:
        excerpt = statement if len(statement) <= STATEMENT_EXCERPT else statement[:STATEMENT_EXCERPT] + "…"
        raise TaskError(f"{connection.dialect.name} error: {_message(error)}\nstatement: {excerpt}") from None
    except exc.StatementError as error:  # a missing parameter and the like: not the database's words
        raise TaskError(f"{error.orig if error.orig else error}\nstatement: {statement[:STATEMENT_EXCERPT]}") from None


def _row(row: Any) -> dict[str, Any]:
    return {str(k): jsonable(v) for k, v in row.items()}


def _store(ctx: RunContext, result: Any, name: str) -> dict[str, Any]:
    size = 0
    with tempfile.TemporaryDirectory(prefix="tiercel-sql-") as tmp:
        path = Path(tmp) / name
        with path.open("w", encoding="utf-8") as out:
            for row in result.mappings():
                out.write(json.dumps(_row(row), ensure_ascii=False) + "\n")
                size += 1
                if size % 10_000 == 0 and ctx.cancelled:
                    raise TaskError("cancelled while storing rows")
        return {"uri": ctx.put_file(path, name), "size": size}


def _message(error: Any) -> str:
    orig = getattr(error, "orig", None)
    return " ".join(str(orig if orig is not None else error).split())
