"""The examples that need a server, run as their comments say: the synchronous webhook answers with
outputs, and the schedule's backfill runs one execution per past day reading `trigger.date`."""

from __future__ import annotations

from pathlib import Path

from tiercel.testing.harness import tiercel

ROOT = Path(__file__).resolve().parents[2]


def test_the_webhook_and_schedule_examples_on_a_server(server, api, tmp_path, h):
    deployed = tiercel("flows", "deploy", "examples", "--server", server.url, home=tmp_path / "unused", cwd=ROOT)
    assert deployed.returncode == 0, deployed.stderr
    assert "company.shop.order_webhook" in deployed.stdout and "company.team.daily_report" in deployed.stdout
    answer = api.post("/api/v1/executions/webhook/company.shop/order_webhook/change-me-to-a-long-random-key",
                      json={"item": "tea", "quantity": 3})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "SUCCESS" and answer.json()["outputs"] == {"total": 13.5, "message": "3 x tea"}

    started = tiercel("triggers", "backfill", "start", "company.team", "daily_report", "daily",
                      "--start", "2024-05-01T00:00:00Z", "--end", "2024-05-03T23:59:59Z", "--server", server.url,
                      home=tmp_path / "unused")
    assert started.returncode == 0, started.stderr
    done = h.wait_for(lambda: (rows := h.executions(api, "daily_report", state="SUCCESS")) and len(rows) >= 3 and rows,
                      timeout=60)
    days = sorted(api.get(f"/api/v1/executions/{r['id']}").json()["outputs"]["day"] for r in done)
    assert days == ["2024-05-01", "2024-05-02", "2024-05-03"]
