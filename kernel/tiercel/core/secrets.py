"""The core secret providers: environment variables, mounted files, and the encrypted store.

The store seals each value with AES-GCM under ``TIERCEL_SECRET_KEY`` (32 random bytes in
base64; ``tiercel secrets new-key`` makes one). The namespace and name are the associated
data, so a sealed row copied to another name does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr

from tiercel.api import Example, SecretProvider, TaskError

KEY_ENV = "TIERCEL_SECRET_KEY"
_FLOW = """id: connect
namespace: company.team
tasks:
  - id: call
    type: core.Log
    message: "calling the API with {{ secret('API_TOKEN') }}"   # logged as ******
"""


def env_key(name: str) -> str:
    """``db-password``, ``db.password`` and ``db/password`` -> ``DB_PASSWORD``, the suffix of the variable names."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


class EnvSecrets(SecretProvider):
    """Secrets from environment variables: ``TIERCEL_SECRET_<NAME>`` in clear, or Kestra's
    ``SECRET_<NAME>`` in base64 (so a Kestra deployment's variables work unchanged).

    Not scoped by namespace: every flow of the process sees them.
    """

    type = "core.EnvSecrets"
    aliases = ("env",)
    examples = [Example("A secret from TIERCEL_SECRET_API_TOKEN", _FLOW, run=False)]

    def get(self, name: str, namespace: str) -> str | None:
        key = env_key(name)
        plain = os.environ.get(f"TIERCEL_SECRET_{key}")
        if plain is not None:
            return plain
        encoded = os.environ.get(f"SECRET_{key}")
        if encoded is None:
            return None
        try:
            return base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise TaskError(
                f"secret `{name}`: SECRET_{key} is not valid base64 (Kestra's format); "
                f"set TIERCEL_SECRET_{key} to give the value in clear"
            ) from None

    def where(self, name: str) -> str:
        key = env_key(name)
        return f"env (TIERCEL_SECRET_{key}, or SECRET_{key} in base64)"


class FileSecrets(SecretProvider):
    """Secrets from files: one file per secret, named after it, as Docker (``/run/secrets``) and
    Kubernetes (a mounted Secret volume) provide them. A trailing newline is dropped.

    ``<path>/<namespace>/<NAME>`` is looked up first, for the namespace and each parent
    (``company.team``, then ``company``), then ``<path>/<NAME>``.
    """

    type = "core.FileSecrets"
    aliases = ("file",)
    examples = [Example("A secret mounted at /run/secrets/API_TOKEN", _FLOW, run=False)]

    path: str = Field(
        "/run/secrets", description="Directory holding one file per secret (and per-namespace subdirectories)."
    )

    def get(self, name: str, namespace: str) -> str | None:
        if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
            return None  # a name that cannot be a file here (`db/password`) may be another provider's
        root = Path(self.path)
        for folder in [*(root / ns for ns in self.lineage(namespace)), root]:
            file = folder / name
            if file.is_file():
                text = file.read_text(encoding="utf-8")
                return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
        return None

    def where(self, name: str) -> str:
        return f"file ({self.path}/<namespace>/{name}, {self.path}/{name})"


def secret_key() -> bytes | None:
    """The store's AES key from ``TIERCEL_SECRET_KEY``; None when unset."""
    raw = os.environ.get(KEY_ENV)
    if not raw:
        return None
    try:
        key = base64.b64decode(raw, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise TaskError(f"{KEY_ENV} must be 32 random bytes in base64 (make one with `tiercel secrets new-key`)")
    return key


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def seal(key: bytes, namespace: str, name: str, value: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, value.encode(), f"{namespace}\0{name}".encode())


def unseal(key: bytes, namespace: str, name: str, sealed: bytes) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], f"{namespace}\0{name}".encode()).decode()
    except InvalidTag:
        raise TaskError(
            f"secret `{name}` of namespace `{namespace or '(global)'}` does not decrypt: "
            f"{KEY_ENV} is not the key it was stored with"
        ) from None


class StoredSecrets(SecretProvider):
    """Secrets kept encrypted in Tiercel's database (``tiercel secrets set``), by namespace.

    A flow sees its namespace's secrets, then its parents' (``company.team`` sees ``company``'s),
    then the global ones. Values are sealed with AES-GCM under ``TIERCEL_SECRET_KEY``.
    """

    type = "core.StoredSecrets"
    aliases = ("store",)
    examples = [Example("A secret set with `tiercel secrets set API_TOKEN -n company`", _FLOW, run=False)]

    _home: Path | None = PrivateAttr(None)
    _store: Any = PrivateAttr(None)

    def open(self, home: Path) -> None:
        self._home = home

    def get(self, name: str, namespace: str) -> str | None:
        if self._home is None:
            return None
        if self._store is None:  # connected on first use: most runs read no stored secret
            from tiercel.backend import database_of_home, open_database
            from tiercel.backend.secrets import SecretStore

            self._store = SecretStore(open_database(database_of_home(self._home)))
        for ns in [*self.lineage(namespace), ""]:
            sealed = self._store.get(ns, name)
            if sealed is not None:
                key = secret_key()
                if key is None:
                    raise TaskError(
                        f"secret `{name}` is stored encrypted (namespace `{ns or '(global)'}`) but "
                        f"{KEY_ENV} is not set in this process"
                    )
                return unseal(key, ns, name, sealed)
        return None

    def where(self, name: str) -> str:
        return "store (`tiercel secrets list`)"
