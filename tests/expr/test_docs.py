"""docs/user/expressions.md documents every function, filter and test Tiercel adds."""

from pathlib import Path

import pytest

from tiercel.expr.builtins import FILTERS, GLOBALS, TESTS

DOC = (Path(__file__).parents[2] / "docs" / "user" / "expressions.md").read_text()


@pytest.mark.parametrize("name", sorted({*FILTERS, *GLOBALS, *TESTS} - {"d"}))
def test_every_builtin_is_documented(name):
    assert f"`{name}" in DOC or f"is {name}" in DOC, f"document `{name}` in docs/user/expressions.md"


def _examples():
    """Table rows `| … | `{{ example }}` | `result` … |` whose example needs no context."""
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.replace("\\|", "\x00").split("|")]
        if len(cells) < 4 or not cells[2].startswith("`{{") or not cells[3].startswith("`"):
            continue
        example = cells[2].strip("`").replace("\x00", "|")
        result = cells[3].split("`")[1].replace("\x00", "|")
        if any(word in example for word in ("now()", "outputs", "inputs", "secret", "kv(", "read(", "render(",
                                            "uuid", "randomInt", "text", "vars", "'%05d'")):
            continue
        yield pytest.param(example, result, id=example)


@pytest.mark.parametrize(("example", "result"), list(_examples()))
def test_documented_examples_render_as_documented(renderer, example, result):
    value = renderer.render(example, {})
    text = renderer.render_string(example, {})
    assert result in (text, text.replace("\n", "\\n"), repr(value), str(value)), value
