"""The registry's conformance suite: the same checks `tiercel registry grade` runs."""

import pytest
from tiercel_registry import TaskConformance, TriggerConformance
from {{ cookiecutter.__package }}.tasks import Greet
from {{ cookiecutter.__package }}.triggers import NewFile


class TestGreet(TaskConformance):
    component = Greet


class TestNewFile(TriggerConformance):
    component = NewFile

    @pytest.fixture
    def properties(self, tmp_path):
        return {"folder": str(tmp_path)}

    @pytest.fixture
    def emit(self, tmp_path):
        return lambda: (tmp_path / "hello.txt").write_text("hello")
