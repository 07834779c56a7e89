"""Meta-tests: every hook is documented, tested and listed in docs/plugins/hooks.md.

``python tests/plugins/test_hookspecs.py`` rewrites the generated part of hooks.md.
"""

import inspect
import re
from pathlib import Path

import pytest

from tiercel import hookspecs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins" / "hooks.md"
MARKER = "<!-- generated below from kernel/tiercel/hookspecs.py: run `python tests/plugins/test_hookspecs.py` -->"
SPECS = [name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "tiercel_spec")]


def reference() -> str:
    """The generated hook reference: one section per hook, in hookspecs.py order."""
    parts = []
    for name in SPECS:
        fn = getattr(hookspecs, name)
        sig = inspect.signature(fn)
        flags = [k for k, v in fn.tiercel_spec.items() if v is True]
        parts += [f"## `{name}({', '.join(sig.parameters)})`", "", "```python",
                  f"def {name}{str(sig).replace(chr(39), '')}", "```", ""]
        if flags:
            parts += [f"Hook options: {', '.join(flags)}.", ""]
        parts += [inspect.getdoc(fn), ""]
    return "\n".join(parts)


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


def test_hook_reference_is_up_to_date():
    text = DOC.read_text(encoding="utf-8")
    assert MARKER in text
    assert text.split(MARKER, 1)[1].strip() == reference().strip(), \
        "docs/plugins/hooks.md is stale: run `python tests/plugins/test_hookspecs.py`"


if __name__ == "__main__":
    head = DOC.read_text(encoding="utf-8").split(MARKER, 1)[0]
    DOC.write_text(f"{head}{MARKER}\n\n{reference()}", encoding="utf-8")
    print(f"wrote {DOC}")
