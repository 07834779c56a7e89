"""Meta-tests: every hook is documented, tested and listed in docs/plugins/hooks.md."""

import inspect
import re
from pathlib import Path

import pytest

from tiercel import hookspecs

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(name for name, fn in vars(hookspecs).items()
               if inspect.isfunction(fn) and hasattr(fn, "tiercel_spec"))


def signature(name: str) -> str:
    fn = getattr(hookspecs, name)
    return f"{name}({', '.join(inspect.signature(fn).parameters)})"


def test_there_are_hooks():
    assert {"register_tasks", "register_triggers", "register_runners", "register_storages"} <= set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_hook_has_docstring(name):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert len(doc.split()) >= 8, f"hook {name} needs a docstring saying when it is called and what it returns"


@pytest.mark.parametrize("name", SPECS)
def test_hook_has_a_test(name):
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"def test_hook_{name}\b", sources), f"write a test named test_hook_{name}"


@pytest.mark.parametrize("name", SPECS)
def test_hook_is_in_the_reference(name):
    doc = (ROOT / "docs" / "plugins" / "hooks.md").read_text(encoding="utf-8")
    assert f"`{signature(name)}`" in doc, f"docs/plugins/hooks.md lacks the hook {signature(name)}"


@pytest.mark.parametrize("name", SPECS)
def test_hook_reference_matches_docstring(name):
    doc = (ROOT / "docs" / "plugins" / "hooks.md").read_text(encoding="utf-8")
    assert inspect.getdoc(getattr(hookspecs, name)) in doc, f"docs/plugins/hooks.md: update the text of {name}"
