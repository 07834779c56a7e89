"""The Vault / OpenBao KV v2 secret provider."""

from __future__ import annotations

import os
import threading
from typing import Any, Literal

from pydantic import Field, PrivateAttr

from tiercel import Example, SecretProvider, TaskError

FLOW = """id: vault_secret
namespace: company.team
tasks:
  - id: connect
    type: core.Log
    message: "connecting with {{ secret('DB_PASSWORD') }}"
"""


class VaultSecrets(SecretProvider):
    """Secrets from a KV v2 engine of HashiCorp Vault or OpenBao.

    The secrets of namespace ``company.team`` are the keys of the KV secret ``<path>/company.team``
    (``bao kv put -mount=secret tiercel/company.team DB_PASSWORD=…``); a flow also sees its
    parents' (``<path>/company``) and the global ones (``<path>`` itself). Authenticates with a
    token (``token``, else ``VAULT_TOKEN`` / ``BAO_TOKEN``) or AppRole (``roleId`` and ``secretId``,
    else ``VAULT_ROLE_ID`` / ``VAULT_SECRET_ID``), logging in again when the token expires.
    """

    type = "vault.Secrets"
    aliases = ("vault", "openbao")
    examples = [Example("A secret kept in Vault at secret/tiercel/company.team", FLOW, run=False)]

    url: str | None = Field(None, description="Server address; default `VAULT_ADDR` (or `BAO_ADDR`).")
    mount: str = Field("secret", description="Mount point of the KV v2 secrets engine.")
    path: str = Field("tiercel", description="Path under the mount whose sub-secrets are the namespaces.")
    auth: Literal["token", "approle"] | None = Field(
        None, description="`token` or `approle`; default: AppRole when a role id is given, else token."
    )
    token: str | None = Field(None, description="Token; default `VAULT_TOKEN` (or `BAO_TOKEN`). Prefer the variable.")
    roleId: str | None = Field(None, description="AppRole role id; default `VAULT_ROLE_ID`.")
    secretId: str | None = Field(None, description="AppRole secret id; default `VAULT_SECRET_ID`. Prefer the variable.")
    approleMount: str = Field("approle", description="Mount point of the AppRole auth method.")
    verify: bool | str = Field(True, description="Verify TLS: true, false, or the path of a CA bundle.")
    timeout: float = Field(5.0, description="Seconds to wait for each request.")

    _client: Any = PrivateAttr(None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _address(self) -> str:
        url = self.url or os.environ.get("VAULT_ADDR") or os.environ.get("BAO_ADDR")
        if not url:
            raise TaskError("vault secrets: no server address: set `url` or VAULT_ADDR")
        return url

    def _login(self) -> Any:
        import hvac

        client = hvac.Client(url=self._address(), verify=self.verify, timeout=self.timeout)
        role_id = self.roleId or os.environ.get("VAULT_ROLE_ID")
        if self.auth == "approle" or (self.auth is None and role_id):
            secret_id = self.secretId or os.environ.get("VAULT_SECRET_ID")
            if not role_id or not secret_id:
                raise TaskError(
                    "vault secrets: AppRole needs `roleId` and `secretId` (or VAULT_ROLE_ID, VAULT_SECRET_ID)"
                )
            client.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=self.approleMount)
        else:
            client.token = self.token or os.environ.get("VAULT_TOKEN") or os.environ.get("BAO_TOKEN")
            if not client.token:
                raise TaskError(
                    "vault secrets: no token: set VAULT_TOKEN, or use AppRole (VAULT_ROLE_ID, VAULT_SECRET_ID)"
                )
        return client

    def _read(self, secret_path: str) -> dict[str, Any] | None:
        import hvac.exceptions
        import requests

        for attempt in (1, 2):
            with self._lock:
                if self._client is None:
                    self._client = self._login()
                client = self._client
            try:
                response = client.secrets.kv.v2.read_secret_version(
                    path=secret_path, mount_point=self.mount, raise_on_deleted_version=False
                )
            except hvac.exceptions.InvalidPath:
                return None
            except hvac.exceptions.Forbidden as exc:
                if attempt == 1 and self.auth != "token":  # an expired AppRole token: log in again once
                    self._client = None
                    continue
                raise TaskError(
                    f"vault secrets: permission denied reading {self.mount}/{secret_path} "
                    f"(check the token's policy): {exc}"
                ) from None
            except requests.RequestException as exc:
                raise TaskError(f"vault secrets: cannot reach {self._address()}: {type(exc).__name__}") from None
            data = (response or {}).get("data") or {}
            return data.get("data") or {}
        return None

    def get(self, name: str, namespace: str) -> str | None:
        base = self.path.strip("/")
        for secret_path in [*(f"{base}/{ns}" for ns in self.lineage(namespace)), base]:
            data = self._read(secret_path)
            if data and name in data:
                value = data[name]
                return value if isinstance(value, str) else str(value)
        return None

    def where(self, name: str) -> str:
        return f"vault ({self.mount}/{self.path.strip('/')}/<namespace> key {name})"
