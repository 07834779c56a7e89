"""The same engine scenarios on both backends: SQLite (a file in the home) and PostgreSQL (a fresh database).

Plus what only the backend decides: a schema behind or ahead is refused with both revisions and the
command to run, a password never shows where the URL is printed, and `tiercel db upgrade` migrates.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tiercel.testing.harness import run_flow, task_run, tiercel

BOTH = pytest.mark.parametrize("tiercel_db", ["sqlite", "postgresql"], indirect=True)


def _drive(home: Path, flow_source: str, steps: Any, **runtime: Any) -> Any:
    """Run *steps(rt, flow)* (a coroutine) with a serving runtime on the configured database."""
    from tiercel.engine.runtime import Runtime
    from tiercel.flow import load_flow

    rt = Runtime(home, **runtime)
    flow = load_flow(flow_source)

    async def main() -> Any:
        stop = asyncio.Event()
        loop = asyncio.create_task(rt.serve(stop, poll_interval=0.05))
        try:
            return await asyncio.wait_for(steps(rt, flow), 30)
        finally:
            stop.set()
            rt.wake()
            await loop

    try:
        return asyncio.run(main())
    finally:
        rt.close()


@BOTH
def test_a_flow_runs_and_its_rows_are_in_the_configured_database(tiercel_db, tmp_path):
    ex = run_flow("id: t\nnamespace: tests.backends\nlabels: {team: data}\ntasks:\n"
                  "  - {id: a, type: core.Return, format: '{{ 6 * 7 }}'}\n"
                  "  - {id: b, type: core.Log, message: 'got {{ outputs.a.value }}'}\n", home=tmp_path / "home")
    assert ex["state"] == "SUCCESS"
    assert task_run(ex, "a")["outputs"] == {"value": "42"}
    from tiercel.backend import Stores

    stores = Stores.open(tiercel_db)
    try:
        assert stores.db.dialect == ("postgresql" if tiercel_db.startswith("postgresql") else "sqlite")
        found, total = stores.executions.search(labels={"team": "data"})
        assert total == 1 and found[0]["id"] == ex["id"]
        assert any("got 42" in line["message"] for line in stores.logs.query(ex["id"]))
    finally:
        stores.close()
    assert not (tmp_path / "home" / "tiercel.db").exists() or tiercel_db.startswith("sqlite")


@BOTH
def test_failure_retry_then_restart(tiercel_db, tmp_path):
    source = """id: t
namespace: tests.backends
tasks:
  - id: flaky
    type: core.Fail
    condition: "{{ taskrun.attemptsCount < 1 }}"
    retry: {type: constant, interval: PT0.05S, maxAttempt: 2}
  - id: once
    type: core.Fail
    condition: "{{ execution.state != 'RESTARTED' and taskrun.attemptsCount < 1 }}"
"""

    async def steps(rt: Any, flow: Any) -> Any:
        ex = rt.new_execution(flow, {})
        rt.submit(ex)
        first = rt.stores.executions.json((await rt.wait(ex.id)).id)
        rt.restart(ex.id)
        await rt.wait(ex.id)
        return first, rt.stores.executions.json(ex.id)

    first, second = _drive(tmp_path / "home", source, steps)
    assert first["state"] == "FAILED"
    assert len(task_run(first, "flaky")["attempts"]) == 2 and task_run(first, "flaky")["state"] == "SUCCESS"
    assert second["state"] == "SUCCESS"
    assert len(task_run(second, "once")["attempts"]) == 2


@BOTH
def test_concurrency_limit_queues_then_starts_in_order(tiercel_db, tmp_path):
    source = "id: limited\nnamespace: tests.backends\nconcurrency: {limit: 1}\ntasks:\n" \
             "  - {id: nap, type: core.Sleep, duration: PT0.2S}\n"

    async def steps(rt: Any, flow: Any) -> Any:
        runs = [rt.new_execution(flow, {}) for _ in range(3)]
        for ex in runs:
            rt.submit(ex)
        states = [rt.stores.executions.state(ex.id) for ex in runs]
        done = [await rt.wait(ex.id) for ex in runs]
        return states, done

    states, done = _drive(tmp_path / "home", source, steps)
    assert states == ["CREATED", "QUEUED", "QUEUED"] or states[1:] == ["QUEUED", "QUEUED"]
    assert [ex.state for ex in done] == ["SUCCESS"] * 3
    starts = [ex.started_at for ex in done]
    ends = [ex.ended_at for ex in done]
    assert starts[1] >= ends[0] and starts[2] >= ends[1]  # never two at once, oldest first


@BOTH
def test_pause_then_resume(tiercel_db, tmp_path):
    source = "id: t\nnamespace: tests.backends\ntasks:\n  - {id: gate, type: core.Pause}\n" \
             "  - {id: after, type: core.Log, message: resumed}\n"

    async def steps(rt: Any, flow: Any) -> Any:
        ex = rt.new_execution(flow, {})
        rt.submit(ex)
        for _ in range(200):
            if rt.stores.executions.state(ex.id) == "PAUSED":
                break
            await asyncio.sleep(0.02)
        paused = rt.stores.executions.state(ex.id)
        rt.command(ex.id, "resume")
        await rt.wait(ex.id)
        return paused, rt.stores.executions.json(ex.id)

    paused, ex = _drive(tmp_path / "home", source, steps)
    assert paused == "PAUSED"
    assert ex["state"] == "SUCCESS" and task_run(ex, "after")["state"] == "SUCCESS"


@BOTH
def test_subflow_outputs_reach_the_parent(tiercel_db, tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "child.yaml").write_text("id: child\nnamespace: tests.backends\ninputs: [{id: n, type: INT}]\ntasks:\n"
                                      "  - {id: double, type: core.Return, format: '{{ inputs.n * 2 }}'}\n"
                                      "outputs: [{id: doubled, type: INT, value: '{{ outputs.double.value }}'}]\n")
    (flows / "parent.yaml").write_text("id: parent\nnamespace: tests.backends\ntasks:\n"
                                       "  - {id: call, type: core.Subflow, namespace: tests.backends, flowId: child, "
                                       "inputs: {n: 21}}\n"
                                       "  - {id: show, type: core.Return, format: '{{ outputs.call.outputs.doubled }}'}\n")
    ex = run_flow(flows / "parent.yaml", home=tmp_path / "home")
    assert ex["state"] == "SUCCESS"
    assert task_run(ex, "show")["outputs"]["value"] == "42"


@BOTH
def test_a_schema_behind_or_ahead_is_refused_naming_both_revisions(tiercel_db, tmp_path):
    from tiercel.backend import SCHEMA_HEAD, SchemaMismatch, Stores

    stores = Stores.open(tiercel_db)
    stores.db.execute("UPDATE alembic_version SET version_num = '0004'")
    stores.close()
    with pytest.raises(SchemaMismatch) as behind:
        Stores.open(tiercel_db)
    assert f"revision 0004, this Tiercel needs {SCHEMA_HEAD}" in str(behind.value)
    assert "tiercel db upgrade" in str(behind.value)
    cli = tiercel("executions", "list", home=tmp_path / "home", check=False)
    assert cli.returncode == 2 and "0004" in cli.stderr and "tiercel db upgrade" in cli.stderr, cli.stderr

    _set_version(tiercel_db, "9999")  # the stores refuse to open it now: write the version by hand
    with pytest.raises(SchemaMismatch) as ahead:
        Stores.open(tiercel_db)
    assert "9999" in str(ahead.value) and SCHEMA_HEAD in str(ahead.value) and "upgrade Tiercel" in str(ahead.value)


def _set_version(url: str, version: str) -> None:
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url[len("sqlite:///"):]) as conn:
            conn.execute("UPDATE alembic_version SET version_num = ?", (version,))
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE alembic_version SET version_num = %s", (version,))


@BOTH
def test_db_upgrade_brings_a_database_behind_to_the_head(tiercel_db, tmp_path):
    from tiercel.backend import SCHEMA_HEAD, Stores

    Stores.open(tiercel_db).close()
    _set_version(tiercel_db, "0004")
    if tiercel_db.startswith("postgresql"):  # really at 0004: take 0005's table away
        import psycopg

        with psycopg.connect(tiercel_db, autocommit=True) as conn:
            conn.execute("DROP TABLE secrets")
            conn.execute("ALTER TABLE kv DROP COLUMN type")
    else:
        import sqlite3

        with sqlite3.connect(tiercel_db[len("sqlite:///"):]) as conn:
            conn.execute("DROP TABLE secrets")
            conn.execute("ALTER TABLE kv DROP COLUMN type")
    current = tiercel("db", "current", home=tmp_path / "home")
    assert "revision 0004" in current.stdout and "tiercel db upgrade" in current.stdout
    done = tiercel("db", "upgrade", home=tmp_path / "home")
    assert f"upgraded from 0004 to {SCHEMA_HEAD}" in done.stdout, done.stdout + done.stderr
    again = tiercel("db", "upgrade", home=tmp_path / "home")
    assert f"already at revision {SCHEMA_HEAD}" in again.stdout
    stores = Stores.open(tiercel_db)
    try:
        assert stores.secrets.names() == [] and stores.kv.entries("ns") == []  # 0005's table and column are back
    finally:
        stores.close()


def test_db_upgrade_on_postgresql_from_empty_with_the_db_option(tiercel_pg_url, tmp_path):
    import psycopg

    with psycopg.connect(tiercel_pg_url, autocommit=True) as conn:  # an empty database, as a DBA hands it over
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    done = tiercel("db", "upgrade", "--db", tiercel_pg_url, home=tmp_path / "home")
    assert "upgraded from an empty database to" in done.stdout, done.stdout + done.stderr
    current = tiercel("db", "current", "--db", tiercel_pg_url, home=tmp_path / "home")
    assert "up to date" in current.stdout


def test_a_fresh_postgresql_database_is_migrated_once_by_concurrent_processes(tiercel_pg_url, tmp_path):
    """Three processes start on an empty database at once: the advisory lock lets one migrate."""
    import subprocess
    import sys

    import psycopg

    with psycopg.connect(tiercel_pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    code = "import sys; from tiercel.backend import Stores; s = Stores.open(sys.argv[1]); print(s.flows.list()); s.close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, tiercel_pg_url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    from tiercel.backend import SCHEMA_HEAD, Stores

    stores = Stores.open(tiercel_pg_url)
    try:
        assert stores.db.query("SELECT version_num FROM alembic_version") == [(SCHEMA_HEAD,)]
    finally:
        stores.close()


def test_the_password_is_masked_wherever_the_url_is_shown(tiercel_pg_url, tmp_path, monkeypatch):
    from tiercel.backend import mask_url

    assert mask_url("postgresql://tiercel:s3cret@db.example:5432/prod") == "postgresql://tiercel:***@db.example:5432/prod"
    assert mask_url("postgresql://db/x?user=u&password=s3cret") == "postgresql://db/x?user=u&password=***"
    assert mask_url("postgresql://u@db/x") == "postgresql://u@db/x"
    # a wrong password: the error names the server, never the password
    wrong = tiercel_pg_url.replace("postgresql://postgres@", "postgresql://nobody:s3cret-pw@")
    failed = tiercel("flows", "list", "--db", wrong, home=tmp_path / "home", check=False)
    assert failed.returncode != 0
    assert "s3cret-pw" not in failed.stdout + failed.stderr
    # tiercel.yaml's db: shows masked in `tiercel config show`
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    secret_url = tiercel_pg_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2-pw@")
    (home / "tiercel.yaml").write_text(f"db: {secret_url}\n")
    monkeypatch.delenv("TIERCEL_DB", raising=False)
    shown = tiercel("config", "show", "--json", home=home)
    settings = {row["key"]: row for row in json.loads(shown.stdout)["settings"]}
    assert settings["db"]["source"] == "file"
    assert "hunter2-pw" not in shown.stdout and ":***@" in settings["db"]["value"]
    # and the file's db: is the one commands use (trust auth here: the password is not checked)
    current = tiercel("db", "current", home=home)
    assert "up to date" in current.stdout and "hunter2-pw" not in current.stdout and ":***@" in current.stdout


def test_the_server_announces_its_database_masked(tiercel_pg_url, tmp_path):
    from tiercel.testing.harness import TiercelServer

    url = tiercel_pg_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2-pw@")
    server = TiercelServer(tmp_path / "home", env={"TIERCEL_DB": url}).start()
    try:
        with server.client() as client:
            r = client.post("/api/v1/flows", content="id: t\nnamespace: tests.backends\ntasks:\n"
                            "  - {id: a, type: core.Log, message: hi}\n", headers={"Content-Type": "application/x-yaml"})
            assert r.status_code == 200, r.text
    finally:
        server.stop()
    output = server.log.read_text()
    assert "database postgresql://postgres:***@" in output and "hunter2-pw" not in output
    from tiercel.backend import Stores

    stores = Stores.open(tiercel_pg_url)
    try:
        assert [f["id"] for f in stores.flows.list()] == ["t"]
    finally:
        stores.close()


def test_the_postgresql_doc_example_runs(_tiercel_pg_template, tmp_path, monkeypatch):
    """docs/operations/postgresql.md stays true: its example runs as written, in a shell."""
    import os
    import re
    import subprocess
    import sys

    doc = Path(__file__).parents[2] / "docs/operations/postgresql.md"
    script = re.search(r"<!-- test: run -->\n```sh\n(.*?)```", doc.read_text(), re.S).group(1)
    monkeypatch.delenv("TIERCEL_DB", raising=False)
    env = {**os.environ, "PGURL": _tiercel_pg_template[0],
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "upgraded from an empty database to" in out.stdout and "up to date" in out.stdout
    assert "hello|SUCCESS" in out.stdout
    assert not (tmp_path / "home" / "tiercel.db").exists()  # everything went to PostgreSQL
