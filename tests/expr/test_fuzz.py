"""Whatever the template, render raises nothing but ExpressionError."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiercel.expr import ExpressionError, Renderer

RENDERER = Renderer(cache_size=64)
VARIABLES = {"inputs": {"n": 3, "s": "text", "none": None}, "outputs": {"a": {"value": [1, {"b": 2}]}},
             "f": lambda *a, **k: a}

FRAGMENTS = ["{{", "}}", "{%", "%}", "{#", "#}", " ", "??", "???", "?", ";", "|", ".", ",", ":", "(", ")", "[", "]",
             "{", "}", "'", '"', "\\", "~", "+", "-", "*", "**", "/", "//", "%", "==", "!=", "<", ">", "=", "if", "else",
             "endif", "for", "in", "endfor", "set", "raw", "endraw", "macro", "endmacro", "not", "and", "or", "is",
             "defined", "none", "null", "true", "0", "1", "-1", "1.5", "9999", "inputs", "outputs", "a", "value", "n",
             "s", "f", "now()", "range", "json", "toJson", "fromJson", "date", "dateAdd", "jq", "default", "keys",
             "chunk", "namespace", "loop", "self", "__class__", "_x", "\n", "é", "\x00"]


def _check(template: str) -> None:
    try:
        RENDERER.render(template, VARIABLES)
        RENDERER.render_string(template, VARIABLES)
    except ExpressionError as exc:
        assert exc.message and exc.expression == template
    try:
        RENDERER.evaluate(template, VARIABLES)
    except ExpressionError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join))
def test_token_soup_only_raises_expression_error(template):
    _check(template)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_only_raises_expression_error(text):
    _check(text)
    _check("{{ " + text + " }}")
    _check("{% " + text + " %}")
