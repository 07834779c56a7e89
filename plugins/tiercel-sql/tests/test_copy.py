"""sql.CopyIn and sql.CopyOut on the machine's PostgreSQL: what lands in the table, what comes back."""

from __future__ import annotations

import uuid

from tiercel.testing import read_file, run_flow, task_run, write_file


def test_copy_in_csv_then_copy_out_a_query(postgres_url, tmp_path):
    import psycopg

    home, table = tmp_path / "home", f"people_{uuid.uuid4().hex[:8]}"
    write_file("tiercel://company/team/_files/people.csv", 'id;name;note\n1;ada;\n2;Zoë;"a;b"\n'.encode(), home)
    with psycopg.connect(postgres_url) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text, note text)")
    ex = run_flow(
        f"""\
id: copy
namespace: company.team
tasks:
  - id: load
    type: io.kestra.plugin.jdbc.postgresql.CopyIn
    url: {postgres_url}
    table: {table}
    from: tiercel://company/team/_files/people.csv
    format: CSV
    header: true
    delimiter: ";"
  - id: export
    type: sql.CopyOut
    url: {postgres_url}
    sql: SELECT id, upper(name) AS name, note IS NULL AS missing FROM {table} ORDER BY id
    format: CSV
    header: true
  - id: whole
    type: sql.CopyOut
    url: {postgres_url}
    table: {table}
    columns: [name]
""",
        home=home,
    )
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "load")["outputs"] == {"rowCount": 2}
    export = task_run(ex, "export")["outputs"]
    assert export["rowCount"] == 2
    assert read_file(export["uri"], home).decode() == "id,name,missing\n1,ADA,t\n2,ZOË,f\n"
    assert read_file(task_run(ex, "whole")["outputs"]["uri"], home).decode() == "ada\nZoë\n"


def test_a_bad_line_fails_with_postgres_message_and_loads_nothing(postgres_url, tmp_path):
    import psycopg

    home, table = tmp_path / "home", f"nums_{uuid.uuid4().hex[:8]}"
    write_file("tiercel://company/team/_files/n.tsv", b"1\n2\nthree\n", home)
    with psycopg.connect(postgres_url) as conn:
        conn.execute(f"CREATE TABLE {table} (n int)")
    ex = run_flow(
        f"""\
id: copy
namespace: company.team
tasks:
  - id: load
    type: sql.CopyIn
    url: {postgres_url}
    table: {table}
    from: tiercel://company/team/_files/n.tsv
  - id: not_postgres
    type: sql.CopyIn
    url: sqlite:///x.db
    table: t
    from: tiercel://company/team/_files/n.tsv
""",
        home=home,
    )
    error = task_run(ex, "load")["error"]
    assert f'COPY into {table} failed: invalid input syntax for type integer: "three"' in error and "line 3" in error
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_the_user_guide_flow_loads_and_reports(postgres_url, tmp_path):
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parents[3] / "docs/user/bulk-load.md"
    source = re.findall(r"```yaml\n(.*?)```", guide.read_text(), re.S)[0]  # the full flow; the next is a fragment
    home = tmp_path / "home"
    ex = run_flow(source, {"url": postgres_url}, home=home)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "load")["outputs"]["rowCount"] == 2
    assert (
        read_file(task_run(ex, "report")["outputs"]["uri"], home).decode() == "customer,spent\nada,19.5\ngrace,7.25\n"
    )


def test_batch_inserts_csv_json_lines_and_ion_in_chunks(postgres_url, tmp_path):
    import psycopg

    home, table = tmp_path / "home", f"batch_{uuid.uuid4().hex[:8]}"
    write_file("tiercel://company/team/_files/a.csv", b"id,name\n1,ada\n2,grace\n3,alan\n", home)
    write_file(
        "tiercel://company/team/_files/b.jsonl", b'{"name": "edsger", "id": 4}\n\n{"id": 5, "name": null}\n', home
    )
    write_file("tiercel://company/team/_files/c.ion", b'{id:6,name:"barbara"}\n{id:7,name:null.string}\n', home)
    with psycopg.connect(postgres_url) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text)")
    ex = run_flow(
        f"""\
id: batch
namespace: company.team
tasks:
  - id: csv
    type: sql.Batch
    url: {postgres_url}
    from: tiercel://company/team/_files/a.csv
    sql: INSERT INTO {table} (id, name) VALUES (CAST(? AS int), ?)
    columns: [id, name]
    chunk: 2
  - id: jsonl
    type: io.kestra.plugin.jdbc.postgresql.Batch
    url: {postgres_url}
    from: tiercel://company/team/_files/b.jsonl
    table: {table}
    columns: [id, name]
  - id: ion
    type: sql.Batch
    url: {postgres_url}
    from: tiercel://company/team/_files/c.ion
    table: {table}
  - id: duplicate
    type: sql.Batch
    url: {postgres_url}
    from: tiercel://company/team/_files/a.csv
    sql: INSERT INTO {table} (id, name) VALUES (CAST(:id AS int), :name)
    chunk: 2
""",
        home=home,
    )
    assert [task_run(ex, t)["outputs"] for t in ("csv", "jsonl", "ion")] == [
        {"rowCount": 3},
        {"rowCount": 2},
        {"rowCount": 2},
    ]
    assert "postgresql error after 0 rows: duplicate key value" in task_run(ex, "duplicate")["error"]
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(f"SELECT id, name FROM {table} ORDER BY id").fetchall()
    assert rows == [(1, "ada"), (2, "grace"), (3, "alan"), (4, "edsger"), (5, None), (6, "barbara"), (7, None)]
