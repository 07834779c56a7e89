"""SQL components through real flows against SQLite and the real PostgreSQL server."""

from __future__ import annotations

import asyncio
import json

import pytest

from tiercel.flow import FlowValidationError, load_flow
from tiercel.testing import TriggerHarness, read_file, run_flow, run_json, task_run


def flow(tasks: str, flow_id: str = "sql_test") -> str:
    return f"id: {flow_id}\nnamespace: company.team\ntasks:\n{tasks}"


def query(task_id: str, url: str, sql: str, extra: str = "", type_: str = "sql.Query") -> str:
    return f"  - id: {task_id}\n    type: {type_}\n    url: \"{url}\"\n    sql: {json.dumps(sql)}\n{extra}"


def run(source: str, tmp_path):
    return run_flow(source, home=tmp_path / "home")


def read(tmp_path, uri: str) -> str:
    return read_file(uri, tmp_path / "home").decode()


def test_create_insert_fetch_and_store(db, tmp_path):
    url, t = db
    ex = run(flow(
        query("create", url, f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, name VARCHAR(50), score NUMERIC(6, 2), seen DATE)")
        + query("insert", url, f"INSERT INTO {t} (id, name, score, seen) VALUES (:id, :name, :score, :seen)",
                "    parameters: {id: 1, name: ada, score: 3.5, seen: '2024-01-02'}\n")
        + query("insert_more", url, f"INSERT INTO {t} (id, name, score) VALUES (2, 'grace', 10), (3, 'linus', 7)")
        + query("one", url, f"SELECT name, score FROM {t} WHERE id = :id",
                "    parameters: {id: \"{{ 2 }}\"}\n    fetchType: FETCH_ONE\n")
        + query("none", url, f"SELECT * FROM {t} WHERE id = 99", "    fetchType: fetch_one\n")
        + query("all", url, f"SELECT id, name FROM {t} WHERE id IN :ids ORDER BY id",
                "    parameters: {ids: [1, 3]}\n    fetchType: FETCH\n")
        + query("store", url, f"SELECT id, name, score FROM {t} ORDER BY id", "    fetchType: STORE\n    fetchSize: 2\n")
        + query("update", url, f"UPDATE {t} SET score = score + 1")
        + "  - id: show\n    type: core.Return\n    format: \"{{ outputs.one.row.name }} {{ outputs.all.size }}\"\n"
    ), tmp_path)
    assert ex["state"] == "SUCCESS", [t["error"] for t in ex["taskRuns"] if t["error"]]
    assert task_run(ex, "insert")["outputs"] == {"updatedRows": 1}
    assert task_run(ex, "one")["outputs"] == {"row": {"name": "grace", "score": 10}, "size": 1}
    assert task_run(ex, "none")["outputs"] == {"row": None, "size": 0}
    assert task_run(ex, "all")["outputs"] == {"rows": [{"id": 1, "name": "ada"}, {"id": 3, "name": "linus"}], "size": 2}
    stored = task_run(ex, "store")["outputs"]
    assert stored["size"] == 3 and stored["uri"].endswith("/rows.jsonl")
    lines = [json.loads(line) for line in read(tmp_path, stored["uri"]).splitlines()]
    assert lines == [{"id": 1, "name": "ada", "score": 3.5}, {"id": 2, "name": "grace", "score": 10},
                     {"id": 3, "name": "linus", "score": 7}]
    assert task_run(ex, "update")["outputs"] == {"updatedRows": 3}
    assert task_run(ex, "show")["outputs"]["value"] == "grace 2"


def test_parameters_are_bound_never_pasted(db, tmp_path):
    url, t = db
    evil = "x'); DROP TABLE " + t + "; --"
    ex = run(flow(
        query("create", url, f"CREATE TABLE {t} (name VARCHAR(200))")
        + query("insert", url, f"INSERT INTO {t} (name) VALUES (:name)", f"    parameters: {{name: {json.dumps(evil)}}}\n")
        + query("read", url, f"SELECT name FROM {t}", "    fetchType: FETCH\n")
    ), tmp_path)
    assert ex["state"] == "SUCCESS", [t["error"] for t in ex["taskRuns"] if t["error"]]
    assert task_run(ex, "read")["outputs"]["rows"] == [{"name": evil}]


def test_a_sql_error_shows_the_message_and_the_statement(db, tmp_path):
    url, t = db
    ex = run(flow(query("bad", url, f"SELECT nope FROM {t}_missing")), tmp_path)
    assert ex["state"] == "FAILED"
    error = task_run(ex, "bad")["error"]
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    assert error.startswith(f"{dialect} error: ")
    assert f"{t}_missing" in error.splitlines()[0]  # the database's own words name the table
    assert error.endswith(f"statement: SELECT nope FROM {t}_missing")


def test_a_missing_parameter_is_named(db, tmp_path):
    url, t = db
    ex = run(flow(query("bad", url, "SELECT :a AS a, :b AS b", "    parameters: {a: 1}\n    fetchType: FETCH\n")), tmp_path)
    error = task_run(ex, "bad")["error"]
    assert "'b'" in error and "statement: SELECT :a AS a, :b AS b" in error


def test_queries_run_in_one_transaction(db, tmp_path):
    url, t = db
    ok = run(flow(query("setup", url, f"""
        CREATE TABLE {t} (id VARCHAR(10) PRIMARY KEY, balance INTEGER);
        -- a comment; with a semicolon
        INSERT INTO {t} VALUES ('a', 100), ('b', 0);
        INSERT INTO {t} VALUES ('c;d', 5);
        SELECT id, balance FROM {t} ORDER BY id;
    """, "    fetchType: FETCH\n", type_="sql.Queries")), tmp_path)
    assert ok["state"] == "SUCCESS", ok
    outputs = task_run(ok, "setup")["outputs"]["outputs"]
    assert len(outputs) == 4 and outputs[1] == {"updatedRows": 2}
    assert outputs[3]["rows"] == [{"id": "a", "balance": 100}, {"id": "b", "balance": 0}, {"id": "c;d", "balance": 5}]

    failed = run(flow(query("transfer", url, f"""
        UPDATE {t} SET balance = balance - :amount WHERE id = 'a';
        UPDATE {t} SET balance = balance + :amount WHERE id = 'zz' AND no_such_column = 1;
    """, "    parameters: {amount: 30}\n", type_="sql.Queries")
        + query("check", url, f"SELECT balance FROM {t} WHERE id = 'a'", "    fetchType: FETCH_ONE\n")
        .replace("  - id: check", "  - id: check\n    description: runs after the failure").replace(
            "\n", "\n", 1)), tmp_path)
    assert failed["state"] == "FAILED"
    assert "no_such_column" in task_run(failed, "transfer")["error"]
    after = run(flow(query("check", url, f"SELECT balance FROM {t} WHERE id = 'a'", "    fetchType: FETCH_ONE\n")), tmp_path)
    assert task_run(after, "check")["outputs"]["row"] == {"balance": 100}  # the first UPDATE was rolled back


def test_auto_commit_false_commits_at_the_end(db, tmp_path):
    url, t = db
    ex = run(flow(
        query("create", url, f"CREATE TABLE {t} (n INTEGER)", "    autoCommit: false\n")
        + query("insert", url, f"INSERT INTO {t} VALUES (1)", "    autoCommit: false\n")
        + query("read", url, f"SELECT count(*) AS c FROM {t}", "    fetchType: FETCH_ONE\n")
    ), tmp_path)
    assert ex["state"] == "SUCCESS", [t["error"] for t in ex["taskRuns"] if t["error"]]
    assert task_run(ex, "read")["outputs"]["row"] == {"c": 1}


def test_postgres_types_and_kestra_names(postgres_url, tmp_path):
    host_db = postgres_url.split("@", 1)[1]
    ex = run(flow(f"""\
  - id: kestra
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: jdbc:postgresql://{host_db}
    username: postgres
    sql: >
      SELECT 1.25::numeric AS price, 42::bigint AS big, DATE '2024-05-06' AS day,
             TIMESTAMP '2024-05-06 07:08:09' AS at, '{{"a": [1, 2]}}'::jsonb AS doc,
             ARRAY[1, 2] AS list, 'ab'::bytea AS raw, NULL AS nothing,
             '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid AS id, $$semi;colon$$ AS dollars
    fetchType: FETCH_ONE
"""), tmp_path)
    assert ex["state"] == "SUCCESS", [t["error"] for t in ex["taskRuns"] if t["error"]]
    assert task_run(ex, "kestra")["outputs"]["row"] == {
        "price": 1.25, "big": 42, "day": "2024-05-06", "at": "2024-05-06T07:08:09", "doc": {"a": [1, 2]},
        "list": [1, 2], "raw": "YWI=", "nothing": None, "id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "dollars": "semi;colon"}


def test_kestra_sqlite_url(tmp_path):
    ex = run(flow(f"""\
  - id: kestra
    type: io.kestra.plugin.jdbc.sqlite.Queries
    url: jdbc:sqlite:{tmp_path / 'k.db'}
    fetchType: FETCH_ONE
    sql: CREATE TABLE k (n INTEGER); INSERT INTO k VALUES (7); SELECT n FROM k
"""), tmp_path)
    assert ex["state"] == "SUCCESS", [t["error"] for t in ex["taskRuns"] if t["error"]]
    assert task_run(ex, "kestra")["outputs"]["outputs"][2]["row"] == {"n": 7}
    assert (tmp_path / "k.db").exists()


def test_an_unreachable_server_is_named_without_the_password(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ex = run(flow(query("down", f"postgresql://someone:s3cret@127.0.0.1:{port}/db", "SELECT 1")), tmp_path)
    error = task_run(ex, "down")["error"]
    assert error.startswith(f"cannot connect to postgresql+psycopg://someone:***@127.0.0.1:{port}/db")
    assert "s3cret" not in error


def test_a_bad_url_or_a_missing_driver_says_so(tmp_path):
    ex = run(flow(query("nodriver", "oracle+nosuchdriver://u@h/db", "SELECT 1")
                  + "    allowFailure: true\n" + query("garbage", "not a url", "SELECT 1")), tmp_path)
    assert "is the database driver installed?" in task_run(ex, "nodriver")["error"]
    assert "property `url`" in task_run(ex, "garbage")["error"]


def test_bad_properties_are_refused_at_load():
    with pytest.raises(FlowValidationError) as err:
        load_flow(flow(query("bad", "sqlite://", "SELECT 1", "    fetchType: EVERYTHING\n")))
    assert "fetchType" in str(err.value)
    with pytest.raises(FlowValidationError) as err:
        load_flow(flow("  - id: bad\n    type: sql.Query\n    url: sqlite://\n"))
    assert "sql" in str(err.value)


def test_split_statements():
    from tiercel_sql._db import split_statements

    assert split_statements("select 1; select ';' ; -- x;y\n select \"a;b\" /* ; */;;  ") == [
        "select 1", "select ';'", "-- x;y\n select \"a;b\" /* ; */"]
    assert split_statements("CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql; SELECT $1") == [
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql", "SELECT $1"]
    assert split_statements("select 'it''s; fine'; -- only a comment") == ["select 'it''s; fine'"]


def test_through_the_cli(tmp_path):
    path = tmp_path / "cli.yaml"
    path.write_text(flow(query("q", f"sqlite:///{tmp_path / 'cli.db'}", "SELECT 6 * 7 AS answer", "    fetchType: FETCH_ONE\n"),
                         flow_id="cli_sql"))
    code, ex = run_json(path, home=tmp_path / "home")
    assert code == 0 and task_run(ex, "q")["outputs"]["row"] == {"answer": 42}


# --- the trigger --------------------------------------------------------------------------

def poll_and_deliver(h: TriggerHarness):
    """Poll once and deliver what came, as the trigger runtime does: (event, execution JSON) or (None, None)."""

    async def go():
        event = await h.poll_once()
        return (None, None) if event is None else (event, await h.deliver(event))

    return asyncio.run(go())


def test_trigger_starts_once_per_distinct_result(db, tmp_path):
    url, t = db
    setup = run(flow(query("create", url, f"CREATE TABLE {t} (id INTEGER, done INTEGER)")), tmp_path)
    assert setup["state"] == "SUCCESS", setup
    watch = f"""\
id: watch_rows
namespace: company.team
variables:
  table: {t}
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.size }}}} rows"
triggers:
  - id: rows
    type: io.kestra.plugin.jdbc.postgresql.Trigger
    url: "{url}"
    interval: PT1S
    sql: "SELECT id FROM {{{{ vars.table }}}} WHERE done = :done ORDER BY id"
    parameters: {{done: 0}}
"""
    with TriggerHarness(watch, tmp_path / "home") as h:
        assert poll_and_deliver(h) == (None, None)  # no rows: no execution
        run(flow(query("add", url, f"INSERT INTO {t} VALUES (1, 0), (2, 0)")), tmp_path)
        event, ex = poll_and_deliver(h)
        assert event.variables == {"rows": [{"id": 1}, {"id": 2}], "size": 2}
        assert ex is not None and ex["trigger"]["variables"]["size"] == 2
        again, duplicate = poll_and_deliver(h)
        assert again.key == event.key and duplicate is None  # same rows: deduplicated
        run(flow(query("more", url, f"INSERT INTO {t} VALUES (3, 0)")), tmp_path)
        _, third = poll_and_deliver(h)
        assert third is not None
        assert len(h.executions()) == 2


def test_trigger_store_mode(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    run(flow(query("seed", url, "CREATE TABLE s (n INTEGER); INSERT INTO s VALUES (1), (2)", type_="sql.Queries")), tmp_path)
    watch = f"""\
id: watch_store
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.uri }}}}"
triggers:
  - id: rows
    type: sql.Trigger
    url: "{url}"
    fetchType: STORE
    sql: SELECT n FROM s
"""
    with TriggerHarness(watch, tmp_path / "home") as h:
        event, ex = poll_and_deliver(h)
        assert event.variables["size"] == 2 and ex is not None
        assert h.open_file(event.variables["uri"]).read() == b'{"n": 1}\n{"n": 2}\n'
        _, duplicate = poll_and_deliver(h)
        assert duplicate is None


def test_examples_are_valid_and_the_sqlite_ones_run(tmp_path, monkeypatch):
    from tiercel_sql.components import Queries, Query, Trigger

    monkeypatch.chdir(tmp_path)  # the examples use relative SQLite files
    for cls in (Query, Queries, Trigger):
        assert cls.examples
        for example in cls.examples:
            load_flow(example.flow)
            if example.run:
                ex = run(example.flow, tmp_path)
                assert ex["state"] == "SUCCESS", (cls.type, ex)


def test_readme_flows_run(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    *_, orders, new_orders = re.findall(r"```yaml\n(.*?)```", (Path(__file__).parent.parent / "README.md").read_text(), re.S)
    ex = run(orders, tmp_path)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "by_customer")["outputs"]["rows"] == [{"customer": "ada", "spent": 19.5},
                                                               {"customer": "grace", "spent": 30}]
    with TriggerHarness(new_orders, tmp_path / "home") as h:
        async def fire_and_run():
            event = await h.poll_once()
            return event, await h.run(event, timeout=30)

        event, done = asyncio.run(fire_and_run())
        assert event.variables["size"] == 3
        assert done["state"] == "SUCCESS", done
        assert poll_and_deliver(h) == (None, None)  # the flow marked the orders processed


def test_a_timeout_interrupts_the_running_statement(db, tmp_path):
    import time

    url, t = db
    forever = ("SELECT pg_sleep(3600)" if url.startswith("postgres") else
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n")
    start = time.monotonic()
    ex = run(flow(query("slow", url, forever, "    timeout: PT1S\n    fetchType: FETCH_ONE\n")), tmp_path)
    assert ex["state"] == "FAILED" and "timed out" in task_run(ex, "slow")["error"]
    assert time.monotonic() - start < 8  # the statement itself was stopped, not left running


@pytest.mark.parametrize("delay", [0, 0.001, 0.01, 0.05, 0.2])
def test_a_cancelled_query_stops_whenever_the_cancel_comes(delay, tmp_path):
    """The cancel may land before the statement starts (connecting): it must still stop it."""
    import time
    from types import SimpleNamespace

    from tiercel_sql._db import run as run_query

    spec = SimpleNamespace(url=f"sqlite:///{tmp_path / 'c.db'}", username=None, password=None, parameters=None,
                           sql="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n")
    ctx = SimpleNamespace(cancelled=False)

    async def go():
        work = asyncio.ensure_future(run_query(ctx, spec, [spec.sql], transaction=False, fetch_type="FETCH_ONE"))
        await asyncio.sleep(delay)
        work.cancel()
        start = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await work
        return time.monotonic() - start

    assert asyncio.run(go()) < 3



def test_mysql_input_file_loads_with_load_data_local(tmp_path):
    """Kestra's jdbc.mysql.Query `inputFile`: LOAD DATA LOCAL INFILE from an internal-storage file (MariaDB)."""
    import socket
    import uuid

    from tiercel.testing.harness import run_flow, task_run

    try:
        socket.create_connection(("127.0.0.1", 3306), timeout=1).close()
    except OSError:
        pytest.skip("no MySQL/MariaDB on 127.0.0.1:3306")
    table = f"discounts_{uuid.uuid4().hex[:8]}"
    ex = run_flow(f"""
id: mysql_load
namespace: company.team
tasks:
  - id: extract
    type: io.kestra.plugin.core.storage.Write
    content: "1,ada,0.10\\n2,grace,0.25\\n"
    extension: .csv
  - id: create
    type: io.kestra.plugin.jdbc.mysql.Query
    url: jdbc:mysql://127.0.0.1:3306/test
    username: root
    sql: CREATE TABLE {table} (id INT, name VARCHAR(20), discount DECIMAL(4,2))
  - id: load
    type: io.kestra.plugin.jdbc.mysql.Query
    url: jdbc:mysql://127.0.0.1:3306/test
    username: root
    inputFile: "{{{{ outputs.extract.uri }}}}"
    sql: |
      LOAD DATA LOCAL INFILE '{{{{ inputFile }}}}'
      INTO TABLE {table}
      FIELDS TERMINATED BY ','
      LINES TERMINATED BY '\\n'
  - id: read
    type: io.kestra.plugin.jdbc.mysql.Query
    url: jdbc:mysql://127.0.0.1:3306/test
    username: root
    sql: SELECT count(*) AS n, max(name) AS last FROM {table}
    fetchType: FETCH_ONE
  - id: drop
    type: io.kestra.plugin.jdbc.mysql.Query
    url: jdbc:mysql://127.0.0.1:3306/test
    username: root
    sql: DROP TABLE {table}
""", home=tmp_path / "home")
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "load")["outputs"]["updatedRows"] == 2
    assert task_run(ex, "read")["outputs"]["row"] == {"n": 2, "last": "grace"}
