import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "plugin_fixture"


def fixture_entry_points():
    """Entry points of the test plugin distribution (tiercel-testplug)."""
    if str(FIXTURE) not in sys.path:
        sys.path.insert(0, str(FIXTURE))
    return [ep for d in distributions(path=[str(FIXTURE)]) for ep in d.entry_points if ep.group == "tiercel"]


@pytest.fixture(scope="session")
def registry():
    from tiercel.plugins import load_registry

    return load_registry(fixture_entry_points())


@pytest.fixture
def load(registry):
    from tiercel.flow import load_flow

    def _load(text, path="flow.yaml"):
        return load_flow(text, path, registry=registry)

    return _load


@pytest.fixture
def errors(registry):
    """The FlowErrors of a flow text (empty when valid)."""
    from tiercel.flow import check_flow

    def _errors(text, path="flow.yaml"):
        return check_flow(text, path, registry=registry)

    return _errors


@pytest.fixture(scope="session")
def make_registry_with_broken_plugin():
    """The test plugin plus one whose import fails (tiercel-brokenplug)."""
    from tiercel.plugins import load_registry

    broken = Path(__file__).parent / "plugin_broken"
    sys.path.insert(0, str(broken))
    eps = [ep for d in distributions(path=[str(broken)]) for ep in d.entry_points if ep.group == "tiercel"]
    return load_registry(fixture_entry_points() + eps)
