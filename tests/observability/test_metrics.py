"""/health/live, /health/ready and /metrics of a real server, scraped over HTTP during and after runs."""

from __future__ import annotations

import shutil
import threading
import time

import httpx

FLOW = """
id: obs
namespace: test.obs
tasks:
  - id: nap
    type: core.Sleep
    duration: PT1S
  - id: hello
    type: core.Log
    message: hi
  - id: maybe
    type: core.Fail
    allowFailure: true
"""
YAML = {"Content-Type": "application/x-yaml"}


def test_health_probes(server):
    assert httpx.get(f"{server.url}/health/live").json() == {"status": "UP"}
    ready = httpx.get(f"{server.url}/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "UP", "checks": {"database": {"status": "UP"}, "storage": {"status": "UP"}}}
    # the storage breaks (its directory is replaced by a file): ready says so, live does not care
    storage = server.home / "storage"
    shutil.rmtree(storage, ignore_errors=True)
    storage.write_text("not a directory")
    ready = httpx.get(f"{server.url}/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "DOWN" and body["checks"]["database"] == {"status": "UP"}
    assert body["checks"]["storage"]["status"] == "DOWN" and body["checks"]["storage"]["error"]
    assert httpx.get(f"{server.url}/health/live").status_code == 200
    storage.unlink()
    assert httpx.get(f"{server.url}/health/ready").status_code == 200


def test_metrics_move_during_and_after_a_run(server, prom):
    client = server.client()
    assert client.post("/api/v1/flows", content=FLOW, headers=YAML).status_code == 200
    before = prom.scrape(f"{server.url}/metrics")
    assert prom.value(before, "tiercel_executions_total", flow="obs") == 0
    assert prom.value(before, "tiercel_worker_slots", state="total") == 64

    started = client.post("/api/v1/executions/test.obs/obs")
    assert started.status_code == 200, started.text
    execution_id = started.json()["id"]
    time.sleep(0.4)  # in the middle of the 1 s sleep
    during = prom.scrape(f"{server.url}/metrics")
    assert prom.value(during, "tiercel_executions_created_total", namespace="test.obs", flow="obs") == 1
    assert prom.value(during, "tiercel_executions_running") == 1
    assert prom.value(during, "tiercel_worker_slots", state="busy") == 1
    assert prom.value(during, "tiercel_executions_total", flow="obs") == 0

    deadline = time.monotonic() + 20
    while client.get(f"/api/v1/executions/{execution_id}").json()["state"] not in ("SUCCESS", "WARNING", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.2)
    after = prom.scrape(f"{server.url}/metrics")
    assert prom.value(after, "tiercel_executions_running") == 0
    state = client.get(f"/api/v1/executions/{execution_id}").json()["state"]
    assert prom.value(after, "tiercel_executions_total", namespace="test.obs", flow="obs", state=state) == 1
    assert prom.value(after, "tiercel_execution_duration_seconds_count", flow="obs") == 1
    assert prom.value(after, "tiercel_execution_duration_seconds_sum", flow="obs") >= 1.0
    runs = {"core.Sleep": "SUCCESS", "core.Log": "SUCCESS", "core.Fail": "WARNING"}
    for task_type, task_state in runs.items():
        assert prom.value(after, "tiercel_task_runs_total", flow="obs", type=task_type, state=task_state) == 1, task_type
    assert prom.value(after, "tiercel_task_runs_total", flow="obs") == 3
    # the sleep's histogram: one observation of at least a second, in the buckets from 1 s up
    assert prom.value(after, "tiercel_task_run_duration_seconds_count", type="core.Sleep") == 1
    assert prom.value(after, "tiercel_task_run_duration_seconds_sum", type="core.Sleep") >= 1.0
    assert prom.value(after, "tiercel_task_run_duration_seconds_bucket", type="core.Sleep", le="0.5") == 0
    assert prom.value(after, "tiercel_task_run_duration_seconds_bucket", type="core.Sleep", le="2.5") == 1
    # HTTP requests by route template, never by id
    assert prom.value(after, "tiercel_http_requests_total", method="POST",
                      route="/api/v1/executions/{namespace}/{flowId}", status="200") == 1
    assert prom.value(after, "tiercel_http_requests_total", method="GET",
                      route="/api/v1/executions/{executionId}", status="200") >= 2
    labels = {value for (_, ls) in after for _, value in ls}
    assert execution_id not in labels


def test_metrics_of_the_engine_commands_on_their_own_port(tmp_path, prom):
    from tiercel.testing.harness import TiercelServer
    from tiercel.testing.services import free_port

    port = free_port()
    proc = TiercelServer(tmp_path / "home", command="executor", args=["--metrics-port", str(port)]).start()
    try:
        deadline = time.monotonic() + 20
        while True:  # the port opens first, the runtime's gauges follow once its home is open
            try:
                samples = prom.scrape(f"http://127.0.0.1:{port}/metrics")
                if prom.value(samples, "tiercel_worker_slots", state="total") == 64:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, proc.log.read_text()
            time.sleep(0.1)
        assert prom.value(samples, "process_cpu_seconds_total") > 0
    finally:
        proc.stop()


def test_metrics_follow_the_auth_rules(tmp_path, prom):
    from tiercel.backend import Stores
    from tiercel.testing.harness import TiercelServer

    server = TiercelServer(tmp_path / "home", env={"TIERCEL_PASSWORD_HASH": "cheapest"}, args=["--auth"]).start()
    try:
        stores = Stores.open(server.home / "tiercel.db")
        admin = stores.auth.create_token("admin", "")[1]
        viewer = stores.auth.create_token("viewer", "team.a")[1]
        stores.close()
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        headers = {"Authorization": f"Bearer {admin}", **YAML}
        for ns in ("team.a", "team.b"):
            flow = f"id: f\nnamespace: {ns}\ntasks:\n  - {{id: t, type: core.Log, message: hi}}\n"
            assert httpx.post(f"{server.url}/api/v1/flows", content=flow, headers=headers).status_code == 200
            r = httpx.post(f"{server.url}/api/v1/executions/{ns}/f", params={"wait": True}, headers=headers)
            assert r.status_code == 200, r.text
        seen_by_admin = prom.scrape(f"{server.url}/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert prom.value(seen_by_admin, "tiercel_executions_total", namespace="team.b") == 1
        seen = prom.scrape(f"{server.url}/metrics", headers={"Authorization": f"Bearer {viewer}"})
        assert prom.value(seen, "tiercel_executions_total", namespace="team.a") == 1
        assert not any(("namespace", "team.b") in ls for (_, ls) in seen)
        assert prom.value(seen, "tiercel_http_requests_total") > 0  # what has no namespace is shown
    finally:
        server.stop()


def test_many_scrapes_while_running_do_not_break(server, prom):
    """The scraper reads while the loop writes: no error, counters never go down."""
    client = server.client()
    flow = "id: many\nnamespace: test.obs\ntasks:\n" + "".join(
        f"  - {{id: t{i}, type: core.Log, message: hi}}\n" for i in range(50))
    assert client.post("/api/v1/flows", content=flow, headers=YAML).status_code == 200
    errors: list[str] = []
    last = [0.0]
    stop = threading.Event()

    def scraper() -> None:
        while not stop.is_set():
            try:
                n = prom.value(prom.scrape(f"{server.url}/metrics"), "tiercel_task_runs_total", flow="many")
                if n < last[0]:
                    errors.append(f"went down: {last[0]} -> {n}")
                last[0] = n
            except Exception as exc:  # noqa: BLE001 - the test reports any
                errors.append(repr(exc))

    thread = threading.Thread(target=scraper)
    thread.start()
    try:
        for _ in range(3):
            assert client.post("/api/v1/executions/test.obs/many", params={"wait": True}).status_code == 200
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert prom.value(prom.scrape(f"{server.url}/metrics"), "tiercel_task_runs_total", flow="many") == 150


def test_trigger_lag_of_a_backfill(server, prom):
    """Scheduled date -> execution creation, per trigger: a backfill of past hours lags by hours."""
    from datetime import UTC, datetime, timedelta

    client = server.client()
    flow = ("id: hourly\nnamespace: test.obs\ntasks:\n  - {id: t, type: core.Log, message: hi}\n"
            "triggers:\n  - {id: every_hour, type: core.Schedule, cron: '0 * * * *'}\n")
    assert client.post("/api/v1/flows", content=flow, headers=YAML).status_code == 200
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    if now > datetime.now(UTC):
        now -= timedelta(hours=1)
    body = {"start": (now - timedelta(hours=3)).isoformat(), "end": now.isoformat()}
    r = client.post("/api/v1/triggers/test.obs/hourly/every_hour/backfill", json=body)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while True:
        samples = prom.scrape(f"{server.url}/metrics")
        if prom.value(samples, "tiercel_trigger_lag_seconds_count", flow="hourly", trigger="every_hour") == 3:
            break
        assert time.monotonic() < deadline, samples
        time.sleep(0.2)
    # the dates were 30 min to 3 h 30 ago: every observation lands past the 1,800 s mark
    assert prom.value(samples, "tiercel_trigger_lag_seconds_bucket", trigger="every_hour", le="300.0") == 0
    assert prom.value(samples, "tiercel_trigger_lag_seconds_sum", trigger="every_hour") > 3 * 1800
