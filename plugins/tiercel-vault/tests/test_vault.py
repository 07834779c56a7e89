"""vault.Secrets end to end against a real OpenBao dev server: token and AppRole auth, namespaces,
masking, and the errors a user sees."""

from __future__ import annotations

import json
import uuid

import pytest

from tiercel.testing import run_flow, task_run

FLOW = """id: vault_secret
namespace: company.team
tasks:
  - id: connect
    type: core.Log
    message: "connecting with {{ secret('DB_PASSWORD') }} as {{ secret('DB_USER') }}"
  - id: token
    type: core.Return
    format: "{{ secret('API_TOKEN') | base64encode }}"
"""


@pytest.fixture
def kv(vault_server):
    """A fresh path under the KV mount, written with the root token."""
    import hvac

    client = hvac.Client(url=vault_server.url, token="root")
    path = f"tiercel-{uuid.uuid4().hex[:8]}"

    def put(namespace, **values):
        client.secrets.kv.v2.create_or_update_secret(
            path=f"{path}/{namespace}" if namespace else path, secret=values, mount_point="secret"
        )

    put.path, put.client = path, client
    return put


def providers(monkeypatch, *items):
    monkeypatch.setenv("TIERCEL_SECRET_PROVIDERS", json.dumps(list(items)))


def test_a_flow_reads_vault_secrets_by_namespace_with_a_token_and_they_are_masked(vault_server, kv, monkeypatch):
    kv("company.team", DB_PASSWORD="team-pass-0123456789")
    kv("company", DB_PASSWORD="parent-pass-ignored", DB_USER="svc-company-user")
    kv("", API_TOKEN="global-api-token-abcdef")
    monkeypatch.setenv("VAULT_TOKEN", "root")
    providers(monkeypatch, "env", {"type": "vault", "url": vault_server.url, "path": kv.path})
    logs = []
    ex = run_flow(FLOW, logs=logs)
    assert ex["state"] == "SUCCESS", ex
    text = json.dumps(ex) + json.dumps(logs)
    for value in ("team-pass-0123456789", "svc-company-user", "global-api-token-abcdef", "parent-pass-ignored"):
        assert value not in text
    assert any(m == "connecting with ****** as ******" for _, _, m in logs), logs
    assert task_run(ex, "token")["outputs"]["value"] == "******"


def test_approle_with_a_read_only_policy(vault_server, kv, monkeypatch):
    client = kv.client
    kv("company", DB_PASSWORD="approle-pass-987654", DB_USER="approle-user")
    kv("", API_TOKEN="approle-token-xyz123")
    client.sys.create_or_update_policy(
        name=f"read-{kv.path}", policy=f'path "secret/data/{kv.path}*" {{ capabilities = ["read"] }}'
    )
    if "approle/" not in client.sys.list_auth_methods():
        client.sys.enable_auth_method("approle")
    client.auth.approle.create_or_update_approle(role_name=kv.path, token_policies=[f"read-{kv.path}"])
    role_id = client.auth.approle.read_role_id(role_name=kv.path)["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id(role_name=kv.path)["data"]["secret_id"]
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    providers(monkeypatch, {"type": "vault", "url": vault_server.url, "path": kv.path})
    ex = run_flow(FLOW)
    assert ex["state"] == "SUCCESS", ex
    assert "approle-pass-987654" not in json.dumps(ex)


def test_an_unknown_secret_names_itself_and_the_providers_asked(vault_server, kv, monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", "root")
    providers(monkeypatch, "env", {"type": "vault", "url": vault_server.url, "path": kv.path})
    ex = run_flow(FLOW)
    assert ex["state"] == "FAILED"
    error = task_run(ex, "connect")["error"]
    assert "secret `DB_PASSWORD` not found for namespace `company.team`" in error
    assert "TIERCEL_SECRET_DB_PASSWORD" in error and f"vault (secret/{kv.path}/<namespace> key DB_PASSWORD)" in error


def test_a_denied_or_unreachable_vault_fails_the_task_saying_why(vault_server, kv, monkeypatch):
    from tiercel.testing import free_port

    providers(monkeypatch, {"type": "vault", "url": vault_server.url, "path": kv.path, "token": "not-a-token"})
    ex = run_flow(FLOW)
    assert "permission denied reading secret/" in task_run(ex, "connect")["error"]
    providers(monkeypatch, {"type": "vault", "url": f"http://127.0.0.1:{free_port()}", "token": "root", "timeout": 1})
    ex = run_flow(FLOW)
    assert "vault secrets: cannot reach http://127.0.0.1:" in task_run(ex, "connect")["error"]
