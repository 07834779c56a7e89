"""DuckDB as Kestra's jdbc.duckdb tasks run it: in memory by default, inputFiles, outputFiles, store."""

from __future__ import annotations

import json

from tiercel.testing import read_file, run_flow, task_run, write_file

ORDERS = "customer_name,total\nMichael,12.5\nAda,30\nMichael,7\n"


def test_kestra_duckdb_flow_reads_input_files_in_memory_and_writes_output_files(tmp_path):
    home = tmp_path / "home"
    uri = "tiercel://company/team/_files/orders.csv"
    write_file(uri, ORDERS.encode(), home)
    # The shape of Kestra's DuckDB documentation: no url (jdbc:duckdb: in memory), inputFiles from a stored
    # file, several statements in one Query, {{ workingDir }} and {{ outputFiles.x }} in the SQL.
    ex = run_flow(f"""\
id: duckdb_orders
namespace: company.team
tasks:
  - id: query
    type: io.kestra.plugin.jdbc.duckdb.Query
    inputFiles:
      in.csv: "{uri}"
      codes.csv: |
        code
        7
    sql: |
      CREATE TABLE new_tbl AS SELECT * FROM read_csv_auto('{{{{ workingDir }}}}/in.csv', header=True);
      COPY (SELECT customer_name, sum(total) AS spent FROM new_tbl GROUP BY 1 ORDER BY 1)
        TO '{{{{ outputFiles.out }}}}' (HEADER, DELIMITER ',');
      SELECT count(customer_name) AS count, (SELECT max(code) FROM 'codes.csv') AS code
        FROM new_tbl WHERE customer_name = 'Michael';
    fetchType: FETCH_ONE
    outputFiles:
      - out
  - id: stored
    type: io.kestra.plugin.jdbc.duckdb.Query
    url: "jdbc:duckdb:"
    inputFiles:
      in.csv: "{{{{ read('{uri}') }}}}"
    sql: SELECT customer_name, total FROM read_csv_auto('in.csv', header=True) ORDER BY total
    store: true
  - id: queries
    type: io.kestra.plugin.jdbc.duckdb.Queries
    sql: CREATE TABLE t AS SELECT 42 AS answer; SELECT answer FROM t
    fetchType: FETCH
  - id: show
    type: core.Return
    format: "{{{{ outputs.query.row.count }}}} {{{{ outputs.queries.outputs[1].rows[0].answer }}}}"
""", home=home)
    assert ex["state"] == "SUCCESS", [t["error"] for t in ex["taskRuns"] if t["error"]]
    query = task_run(ex, "query")["outputs"]
    assert query["row"] == {"count": 2, "code": 7} and query["size"] == 1
    assert read_file(query["outputFiles"]["out"], home).decode() == "customer_name,spent\nAda,30.0\nMichael,19.5\n"
    stored = task_run(ex, "stored")["outputs"]
    assert stored["size"] == 3
    rows = [json.loads(line) for line in read_file(stored["uri"], home).decode().splitlines()]
    assert rows == [{"customer_name": "Michael", "total": 7.0}, {"customer_name": "Michael", "total": 12.5},
                    {"customer_name": "Ada", "total": 30.0}]
    assert task_run(ex, "queries")["outputs"]["outputs"][1] == {"rows": [{"answer": 42}], "size": 1}
    assert task_run(ex, "show")["outputs"]["value"] == "2 42"


def test_duckdb_file_database_and_clear_errors(tmp_path):
    db = tmp_path / "shop.duckdb"
    ex = run_flow(f"""\
id: duckdb_file
namespace: company.team
tasks:
  - id: write
    type: sql.duckdb.Query
    url: "jdbc:duckdb:{db}"
    sql: CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS n
  - id: read
    type: sql.duckdb.Query
    url: "duckdb:///{db}"
    sql: SELECT n FROM t
    fetch: true
  - id: missing
    type: sql.duckdb.Query
    sql: COPY (SELECT 1) TO '{{{{ outputFiles.nope }}}}'
    allowFailure: true
""", home=tmp_path / "home")
    assert task_run(ex, "read")["outputs"] == {"rows": [{"n": 1}], "size": 1}
    assert db.exists()
    assert "'nope' is not listed in `outputFiles`" in task_run(ex, "missing")["error"]


def test_the_readme_duckdb_flow(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [source] = re.findall(r"```yaml\n(id: duckdb_orders\n.*?)```", readme, re.S)
    home = tmp_path / "home"
    ex = run_flow(source, home=home)
    assert ex["state"] == "SUCCESS", [t["error"] for t in ex["taskRuns"] if t["error"]]
    assert task_run(ex, "query")["outputs"]["row"] == {"n": 2}
    summary = read_file(task_run(ex, "query")["outputs"]["outputFiles"]["summary"], home).decode()
    assert summary == "customer_name,spent\nAda,30.0\nMichael,19.5\n"
    assert task_run(ex, "all_rows")["outputs"]["size"] == 2
