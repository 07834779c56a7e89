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
    [source] = re.findall(r"```yaml\n(.*?)```", guide.read_text(), re.S)
    home = tmp_path / "home"
    ex = run_flow(source, {"url": postgres_url}, home=home)
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "load")["outputs"]["rowCount"] == 2
    assert (
        read_file(task_run(ex, "report")["outputs"]["uri"], home).decode() == "customer,spent\nada,19.5\ngrace,7.25\n"
    )
