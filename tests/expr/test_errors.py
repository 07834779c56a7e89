"""Error messages: what was undefined and where it was looked up, syntax positions, failing filters."""

import pytest

from tiercel.expr import ExpressionError


def error(renderer, source, variables):
    with pytest.raises(ExpressionError) as info:
        renderer.render(source, variables)
    assert info.value.expression == source
    assert repr(source[:50])[1:-1] in str(info.value)
    return info.value.message


@pytest.mark.parametrize(("source", "message"), [
    ("{{ outputs.missing.value }}", "`outputs.missing` is undefined: no task `missing` has outputs; known: a, b, items"),
    ("{{ outputs.missing }}", "`outputs.missing` is undefined: no task `missing` has outputs; known: a, b, items"),
    ("{{ inputs.nme }}", "`inputs.nme` is undefined: no input `nme`; known: flag, n, name, optional"),
    ("{{ vars.gretting }}", "`vars.gretting` is undefined: no variable `gretting`; known: greeting"),
    ("{{ labels.team }}", "`labels.team` is undefined: no label `team`; known: env"),
    ("{{ flow.tenant }}", "`flow.tenant` is undefined: `flow` has no key `tenant`; known: id, namespace, revision"),
    ("{{ outputs.a.valeu }}", "`outputs.a.valeu` is undefined: `outputs.a` has no key `valeu`; known: value"),
    ("{{ outputs.b.value[7] }}", "`outputs.b.value[7]` is undefined: `outputs.b.value` has 2 item(s); index 7 is out of range"),
    ("{{ inputs.optional.x }}", "`inputs.optional.x` is undefined: `inputs.optional` is null"),
    ("{{ inputs.name.nope }}", "`inputs.name.nope` is undefined: `inputs.name` (a str) has no attribute or key `nope`"),
    ("{{ nothing }}", "`nothing` is undefined; known variables: execution, flow, inputs, labels, outputs, taskrun, vars"),
    ("{{ nothing.deeper.still }}", "`nothing` is undefined; known variables:"),
    ("x {{ nothing }} y", "`nothing` is undefined"),
    ("{{ nothing + 1 }}", "`nothing` is undefined"),
    ("{{ [1, nothing] }}", "`nothing` is undefined"),
    ("{{ {'a': nothing} }}", "`nothing` is undefined"),
    ("{{ [1, nothing] | join }}", "`nothing` is undefined"),
    ("{% if nothing %}x{% endif %}", "`nothing` is undefined"),
    ("{% for x in nothing %}{% endfor %}", "`nothing` is undefined"),
    ("{{ nothing() }}", "`nothing` is undefined"),
    ("{{ nothing == 1 }}", "`nothing` is undefined"),
    ("{{ fromJson('{}').a.b }}", "`a` is undefined: the value has no key `a`; known: (none)"),
])
def test_undefined_values_name_the_path_and_the_known_keys(renderer, variables, source, message):
    assert message in error(renderer, source, variables)


def test_scalars_are_located_by_the_path_written_not_by_identity(renderer):
    variables = {"flow": {"revision": 3}, "inputs": {"n": 3, "none": None}, "other": {"none": None}}
    assert error(renderer, "{{ inputs.n.x }}", variables) == \
        "`inputs.n.x` is undefined: `inputs.n` (a int) has no attribute or key `x`"
    assert error(renderer, "{{ other.none.x }}", variables) == "`other.none.x` is undefined: `other.none` is null"
    assert error(renderer, "{% for r in [{'a': 1}] %}{{ r.b }}{% endfor %}", variables) == \
        "`b` is undefined: the value has no key `b`; known: a"
    rows = {"outputs": {"q": {"rows": [{"id": 1}]}}}
    assert error(renderer, "{% for r in outputs.q.rows %}{{ r.name }}{% endfor %}", rows) == \
        "`outputs.q.rows[0].name` is undefined: `outputs.q.rows[0]` has no key `name`; known: id"


def test_known_keys_are_truncated(renderer):
    outputs = {f"task{i:02d}": {} for i in range(30)}
    message = error(renderer, "{{ outputs.nope }}", {"outputs": outputs})
    assert message.endswith("known: task00, task01, task02, task03, task04, task05, task06, task07, task08, task09, … (20 more)")


def test_defined_tests_and_default_still_work_on_undefined(renderer, variables):
    assert renderer.render("{{ nothing is defined }}", variables) is False
    assert renderer.render("{{ outputs.missing.value is undefined }}", variables) is True
    assert renderer.render("{{ nothing | default(1) }}", variables) == 1


@pytest.mark.parametrize(("source", "message"), [
    ("{{ a + }}", "syntax error at line 1, column 8, near `}}`: unexpected 'end of print statement'"),
    ("{{ 1 2 }}", "syntax error at line 1, column 6, near `2`: expected token 'end of print statement', got 'integer'"),
    ("{{ 1 ? 2 }}", "expected token ':'"),
    ("{% if x %}", "syntax error at line 1, at the end of the expression: Unexpected end of template"),
    ("{% bogus %}", "Encountered unknown tag 'bogus'"),
    ("a\nb\n{{ ) }}", "syntax error at line 3"),
    ("{{ 'unclosed }}", "syntax error at line 1"),
    ("{{ 1 ; 2 }}", "unexpected ';'"),
])
def test_syntax_errors_name_the_position(renderer, source, message):
    assert message in error(renderer, source, {})


def test_multiline_syntax_errors_show_the_line(renderer):
    message = error(renderer, "first line\n{{ a b }}", {})
    assert message.startswith("syntax error at line 2")
    assert message.endswith("line 2: {{ a b }}")


def test_failing_filters_and_operations_are_named(renderer):
    assert error(renderer, "{{ 'x' | fromJson }}", {}) == \
        "filter `fromJson` failed: invalid JSON at line 1, column 1: Expecting value"
    assert error(renderer, "{{ 1 + 'a' }}", {}).startswith("TypeError: unsupported operand")
    assert error(renderer, "{{ 1 / 0 }}", {}) == "ZeroDivisionError: division by zero"


def test_bare_expression_errors(renderer, variables):
    with pytest.raises(ExpressionError, match="`inputs.nope` is undefined") as info:
        renderer.evaluate("inputs.nope > 1", variables)
    assert info.value.expression == "inputs.nope > 1"
    with pytest.raises(ExpressionError, match="syntax error at line 1"):
        renderer.evaluate("inputs.n >", variables)


def test_str_of_the_error_includes_a_truncated_expression():
    exc = ExpressionError("x" * 500, "boom")
    assert str(exc).startswith("boom (in expression 'xxx")
    assert len(str(exc)) < 260
    assert exc.message == "boom"
