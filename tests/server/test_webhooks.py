"""Webhooks: 404s, trigger variables, synchronous answers, conditions, and the QUEUE limit under a burst."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx

HOOK = """\
id: hook
namespace: demo.hooks
tasks:
  - id: out
    type: core.OutputValues
    values:
      who: "{{ trigger.body.name ?? trigger.body }}"
      agent: "{{ trigger.headers['x-agent'][0] ?? '' }}"
      page: "{{ trigger.parameters.page[0] ?? '' }}"
outputs:
  - {id: who, type: STRING, value: "{{ outputs.out.values.who }}"}
  - {id: agent, type: STRING, value: "{{ outputs.out.values.agent }}"}
triggers:
  - {id: sync, type: core.Webhook, key: sync-key-123456, wait: true}
  - {id: async, type: core.Webhook, key: async-key-123456}
  - id: guarded
    type: core.Webhook
    key: guarded-key-1234
    conditions:
      - type: io.kestra.plugin.core.condition.Expression
        expression: "{{ trigger.body.go == true }}"
"""


def test_webhook_sync_async_404_and_variables(api, h):
    h.deploy(api, HOOK)
    base = "/api/v1/executions/webhook/demo.hooks/hook"
    r = api.post(f"{base}/sync-key-123456", json={"name": "ada"}, headers={"X-Agent": "probe", "Authorization": "x"},
                 params={"page": "2"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "SUCCESS" and r.json()["outputs"] == {"who": "ada", "agent": "probe"}
    ex = api.get(f"/api/v1/executions/{r.json()['id']}").json()
    variables = ex["trigger"]["variables"]
    assert ex["trigger"]["id"] == "sync" and ex["trigger"]["type"] == "core.Webhook"
    assert variables["body"] == {"name": "ada"} and variables["parameters"] == {"page": ["2"]}
    assert variables["headers"]["x-agent"] == ["probe"] and "authorization" not in variables["headers"]
    assert ex["taskRuns"][0]["outputs"]["values"]["page"] == "2"

    text = api.put(f"{base}/sync-key-123456", content=b"plain text")
    assert text.status_code == 200 and text.json()["outputs"]["who"] == "plain text"  # not JSON: kept as a string
    assert api.get(f"{base}/sync-key-123456").json()["state"] == "SUCCESS"

    started = api.post(f"{base}/async-key-123456", json={"name": "bo"})
    assert started.status_code == 200 and started.json()["id"] and started.json()["state"] in ("CREATED", "RUNNING")
    h.wait_for(lambda: api.get(f"/api/v1/executions/{started.json()['id']}").json()["state"] == "SUCCESS")

    for url in (f"{base}/wrong-key", "/api/v1/executions/webhook/demo.hooks/nope/sync-key-123456",
                "/api/v1/executions/webhook/other/hook/sync-key-123456"):
        missing = api.post(url, json={})
        assert missing.status_code == 404 and "not found" in missing.json()["message"]

    assert api.post(f"{base}/guarded-key-1234", json={"go": False}).status_code == 204
    assert api.post(f"{base}/guarded-key-1234", json={"go": True}).status_code == 200

    assert api.post(f"{base}/async-key-123456", content=b"x" * (11 << 20)).status_code == 413

    # an Idempotency-Key makes a retried call return the first execution instead of starting another
    first = api.post(f"{base}/async-key-123456", json={}, headers={"Idempotency-Key": "abc"}).json()
    second = api.post(f"{base}/async-key-123456", json={}, headers={"Idempotency-Key": "abc"}).json()
    assert first["id"] == second["id"]

    assert api.post("/api/v1/triggers/demo.hooks/hook/async/disable").json()["disabled"] is True
    assert api.post(f"{base}/async-key-123456", json={}).status_code == 409
    assert api.post("/api/v1/triggers/demo.hooks/hook/async/enable").json()["disabled"] is False
    assert api.post(f"{base}/async-key-123456", json={}).status_code == 200


def test_concurrency_queue_holds_under_a_webhook_burst(api, h):
    """50 calls in about a second with `limit: 1` give 50 executions that never overlap."""
    h.deploy(api, """\
id: serial
namespace: demo.hooks
concurrency: {limit: 1, behavior: QUEUE}
tasks:
  - {id: work, type: core.Sleep, duration: PT0.01S}
  - {id: log, type: core.Log, message: "{{ trigger.body.n }}"}
triggers:
  - {id: hook, type: core.Webhook, key: burst-key-123456}
""")

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30) as client:
            async def call(n: int) -> httpx.Response:
                await asyncio.sleep(n * 0.02)
                return await client.post("/api/v1/executions/webhook/demo.hooks/serial/burst-key-123456", json={"n": n})

            return await asyncio.gather(*(call(n) for n in range(50)))

    responses = asyncio.run(burst())
    assert all(r.status_code == 200 for r in responses)
    done = h.wait_for(lambda: (rows := h.executions(api, "serial", state="SUCCESS")) and len(rows) == 50 and rows,
                      timeout=60)
    spans = sorted((_ts(e["startDate"]), _ts(e["endDate"])) for e in done)
    overlaps = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
    assert overlaps == []
    assert len(h.executions(api, "serial")) == 50


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_sync_webhook_answers_202_when_its_timeout_passes_first(api, h):
    h.deploy(api, """\
id: slow_hook
namespace: demo.hooks
tasks:
  - {id: nap, type: core.Sleep, duration: PT3S}
triggers:
  - {id: hook, type: core.Webhook, key: slow-key-1234567, wait: true}
""")
    r = api.post("/api/v1/executions/webhook/demo.hooks/slow_hook/slow-key-1234567", params={"timeout": 1})
    assert r.status_code == 202 and r.json()["state"] == "RUNNING"
    assert api.post("/api/v1/executions/webhook/demo.hooks/slow_hook/slow-key-1234567",
                    params={"timeout": "soon"}).status_code == 400


def test_inputs_a_webhook_cannot_satisfy_give_a_failed_execution_saying_why(api, h):
    h.deploy(api, """\
id: needs_input
namespace: demo.hooks
inputs:
  - {id: count, type: INT}
tasks:
  - {id: log, type: core.Log, message: "{{ inputs.count }}"}
triggers:
  - id: hook
    type: core.Webhook
    key: needs-input-key-1
    wait: true
    inputs: {count: "{{ trigger.body.count }}"}
""")
    ok = api.post("/api/v1/executions/webhook/demo.hooks/needs_input/needs-input-key-1", json={"count": 3})
    assert ok.json()["state"] == "SUCCESS"
    bad = api.post("/api/v1/executions/webhook/demo.hooks/needs_input/needs-input-key-1", json={"count": "three"})
    assert bad.status_code == 200 and bad.json()["state"] == "FAILED"
    assert "input `count`" in bad.json()["error"] and "hook" in bad.json()["error"]
