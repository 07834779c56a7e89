"""The registry's conformance suite for vault.Secrets, against a real OpenBao dev server."""

from __future__ import annotations

import pytest
from tiercel_vault.provider import VaultSecrets

from tiercel_registry import SecretProviderConformance


class TestVaultSecrets(SecretProviderConformance):
    component = VaultSecrets

    @pytest.fixture
    def properties(self, vault_server):
        return {"url": vault_server.url, "token": "root", "path": "conformance-root"}

    @pytest.fixture
    def seed(self, vault_server):
        import hvac

        client = hvac.Client(url=vault_server.url, token="root")
        return lambda home, namespace, name, value: client.secrets.kv.v2.create_or_update_secret(
            path=f"conformance-root/{namespace}", secret={name: value}, mount_point="secret"
        )
