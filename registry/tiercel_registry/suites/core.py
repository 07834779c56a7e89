"""Conformance tests of the kernel's core plugin (distribution `tiercel`), run by `tiercel registry grade tiercel`."""

import pytest

from tiercel_registry import StorageConformance, conformance_suite

globals().update(conformance_suite("tiercel", {"core.Sleep": {"long_run": {"duration": "PT1H"}}}))


class Test_core_Local(StorageConformance):
    from tiercel.core.storage import Local as component

    @pytest.fixture
    def properties(self, tmp_path):
        return {"basePath": str(tmp_path)}
