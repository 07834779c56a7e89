"""Conformance tests of the kernel's core plugin (distribution `tiercel`), run by `tiercel registry grade tiercel`."""

import base64
import os

import pytest

from tiercel_registry import SecretProviderConformance, StorageConformance, conformance_suite

globals().update(conformance_suite("tiercel", {"core.Sleep": {"long_run": {"duration": "PT1H"}}}))


class Test_core_Local(StorageConformance):
    from tiercel.core.storage import Local as component

    @pytest.fixture
    def properties(self, tmp_path):
        return {"basePath": str(tmp_path)}



def _provider(type_name):
    from tiercel.plugins import get_registry

    return get_registry().get("secret", type_name).cls


class Test_core_EnvSecrets(SecretProviderConformance):
    component = _provider("core.EnvSecrets")

    @pytest.fixture
    def seed(self, monkeypatch):
        return lambda home, namespace, name, value: monkeypatch.setenv(f"TIERCEL_SECRET_{name}", value)


class Test_core_FileSecrets(SecretProviderConformance):
    component = _provider("core.FileSecrets")

    @pytest.fixture
    def properties(self, tmp_path):
        return {"path": str(tmp_path)}

    @pytest.fixture
    def seed(self, tmp_path):
        def put(home, namespace, name, value):
            (tmp_path / namespace).mkdir(exist_ok=True)
            (tmp_path / namespace / name).write_text(value + "\n")
        return put


class Test_core_StoredSecrets(SecretProviderConformance):
    component = _provider("core.StoredSecrets")

    @pytest.fixture
    def seed(self, monkeypatch):
        from tiercel.testing import put_secret

        monkeypatch.setenv("TIERCEL_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
        return put_secret
