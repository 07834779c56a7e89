import itertools
import textwrap
from importlib.metadata import distributions

import pytest

_counter = itertools.count()


@pytest.fixture
def make_plugin(tmp_path, monkeypatch):
    """Install a fake plugin distribution (a `.dist-info` on sys.path); return its entry points.

    Each call gets a fresh folder and module name, so imports never leak between tests.
    """
    monkeypatch.syspath_prepend(str(tmp_path))

    def _make(dist: str, source: str, version: str = "1.0", ep_name: str | None = None):
        n = next(_counter)
        root = tmp_path / f"site{n}"
        root.mkdir()
        module = f"{dist.replace('-', '_')}_{n}"
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[tiercel]\n{ep_name or dist.removeprefix('tiercel-')} = {module}\n")
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(root))
        return [ep for d in distributions(path=[str(root)]) for ep in d.entry_points if ep.group == "tiercel"]

    return _make
