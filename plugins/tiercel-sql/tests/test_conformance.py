"""The registry's conformance suite for the SQL components, on SQLite and the session's PostgreSQL."""

import sqlite3

import pytest
from tiercel_sql.bulk import Batch, CopyIn, CopyOut
from tiercel_sql.components import DuckDBQueries, DuckDBQuery, Queries, Query, Trigger

from tiercel_registry import TaskConformance, TriggerConformance

# A query that runs until cancelled, for the timeout and kill checks (a recursive CTE counting forever).
FOREVER = {"url": "sqlite://", "fetchType": "FETCH_ONE",
           "sql": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"}


class InTmp:
    @pytest.fixture(autouse=True)
    def _in_tmp(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)  # the examples write relative SQLite files


class TestQuery(InTmp, TaskConformance):
    component = Query
    long_run = FOREVER

    @pytest.fixture
    def example_inputs(self, postgres_url):
        return {"url": postgres_url}


class TestDuckDBQuery(InTmp, TaskConformance):
    component = DuckDBQuery
    long_run = {"fetchType": "FETCH_ONE", "sql": "SELECT count(*) FROM range(1000000000000) a, range(1000000) b"}


class TestDuckDBQueries(InTmp, TaskConformance):
    component = DuckDBQueries


class TestQueries(InTmp, TaskConformance):
    component = Queries
    long_run = FOREVER


class TestTrigger(InTmp, TriggerConformance):
    component = Trigger

    @pytest.fixture
    def properties(self, tmp_path):
        db = tmp_path / "shop.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE orders (id INTEGER, total NUMERIC, processed INTEGER)")
            conn.execute("INSERT INTO orders VALUES (1, 10, 0), (2, 20, 0)")
        return {"url": f"sqlite:///{db}"}


class TestCopyIn(TaskConformance):
    component = CopyIn

    @pytest.fixture
    def example_inputs(self, postgres_url):
        return {"url": postgres_url}


class TestCopyOut(TaskConformance):
    component = CopyOut

    @pytest.fixture
    def example_inputs(self, postgres_url):
        return {"url": postgres_url}

    @pytest.fixture
    def long_run(self, postgres_url):  # a query the server runs until COPY is cancelled
        return {"url": postgres_url, "sql": "SELECT pg_sleep(3600)"}


class TestBatch(InTmp, TaskConformance):
    component = Batch
