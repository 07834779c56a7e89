import pytest

from tiercel.expr import Renderer


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture
def variables() -> dict:
    """A context shaped like the engine's."""
    return {
        "flow": {"id": "hello", "namespace": "company.team", "revision": 2},
        "execution": {"id": "exec1", "startDate": "2024-01-31T10:00:00Z"},
        "inputs": {"name": "world", "n": 3, "optional": None, "flag": True},
        "vars": {"greeting": "Hello"},
        "outputs": {"a": {"value": 42}, "b": {"value": [1, 2]}, "items": {"value": "task named items"}},
        "taskrun": {"value": "v1", "attempt": 1},
        "labels": {"env": "dev"},
    }
