import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
DISTS = FIXTURES / "dists"

if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))


@pytest.fixture
def dists(monkeypatch):
    """The fixture plugin distributions (a .dist-info and a module each), importable.

    The process-wide plugin registry is put back afterwards, so that no other test sees them.
    """
    from tiercel import plugins
    from tiercel_registry import packaging

    previous = plugins._registry
    monkeypatch.syspath_prepend(str(DISTS))
    packaging._loaded.clear()
    yield DISTS
    packaging._loaded.clear()
    plugins.set_registry(previous)
