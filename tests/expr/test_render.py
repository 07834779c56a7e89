"""Rendering: native types, nested values, text, evaluate, callables, ??, caching."""

import datetime as dt

import pytest

from tiercel.expr import ExpressionError, Renderer


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ 6 * 7 }}", 42),
    ("{{ outputs.a.value }}", 42),
    ("  {{ outputs.b.value }}\n", [1, 2]),
    ("{{ none }}", None),
    ("{{ null }}", None),
    ("{{ inputs.optional }}", None),
    ("{{ inputs.flag }}", True),
    ("{{ 1.5 }}", 1.5),
    ("{{ {'a': inputs.n} }}", {"a": 3}),
    ("{{ inputs.n > 2 }}", True),
    ("{{- inputs.name -}}", "world"),
    ("{# a comment #}{{ inputs.n }}", 3),
    ("{{ range(3) }}", [0, 1, 2]),
    ("{{ outputs.b.value | map('string') }}", ["1", "2"]),
    ("{{ {'a': 1}.keys() }}", ["a"]),
    ("{{ inputs.items() }}", [("name", "world"), ("n", 3), ("optional", None), ("flag", True)]),
])
def test_single_expression_keeps_native_type(renderer, variables, source, expected):
    result = renderer.render(source, variables)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ vars.greeting }}, {{ inputs.name }}", "Hello, world"),
    ("n={{ inputs.n }}", "n=3"),
    ("{{ inputs.n }}{{ inputs.n }}", "33"),
    ("{{ outputs.b.value }} items", "[1,2] items"),
    ("{{ {'a': 1} }}!", '{"a":1}!'),
    ("flag={{ inputs.flag }} other={{ 1 > 2 }}", "flag=true other=false"),
    ("[{{ inputs.optional }}]", "[]"),
    ("{% if inputs.n > 2 %}big{% else %}small{% endif %}", "big"),
    ("{% for x in outputs.b.value %}{{ x }};{% endfor %}", "1;2;"),
    ("{% raw %}{{ not rendered }}{% endraw %}", "{{ not rendered }}"),
    ("line\n{{ inputs.n }}\n", "line\n3\n"),
    ("{{ 'x' ~ inputs.flag ~ outputs.b.value }}", "xtrue[1,2]"),
    ("{{ range(3) }}!", "[0,1,2]!"),
    ("{{ outputs.b.value | map('string') }}!", '["1","2"]!'),
    ("{{ outputs.b.value | select('odd') | list }}!", "[1]!"),
    ("{{ {'a': 1}.values() }}!", "[1]!"),
    ("a {{ 'x' ~ true ~ none ~ [1] }}", "a xtrue[1]"),
    ("a {{ ('x' ~ false) | upper }}", "a XFALSE"),
])
def test_text_templates_render_to_strings(renderer, variables, source, expected):
    assert renderer.render(source, variables) == expected


def test_strings_without_expressions_are_returned_unchanged(renderer):
    text = "no expression { here } or {# this #}"
    assert renderer.render(text, {}) is text
    assert renderer.render_string(text, {}) is text


def test_non_string_scalars_pass_through(renderer):
    for value in (1, 2.5, True, None, dt.date(2024, 1, 1)):
        assert renderer.render(value, {}) is value


def test_nested_lists_and_dicts_render_recursively_including_keys(renderer, variables):
    value = {
        "message": "{{ vars.greeting }}",
        "count": "{{ inputs.n }}",
        "{{ flow.id }}_key": ["{{ outputs.a.value }}", "plain", {"deep": "{{ labels.env }}"}],
        "static": 7,
        ("tuple", "key"): ("{{ inputs.n }}",),
    }
    assert renderer.render(value, variables) == {
        "message": "Hello",
        "count": 3,
        "hello_key": [42, "plain", {"deep": "dev"}],
        "static": 7,
        ("tuple", "key"): (3,),
    }


def test_render_does_not_mutate_its_input(renderer, variables):
    value = {"a": ["{{ inputs.n }}"]}
    renderer.render(value, variables)
    assert value == {"a": ["{{ inputs.n }}"]}


def test_render_string_always_returns_text(renderer, variables):
    assert renderer.render_string("{{ inputs.n }}", variables) == "3"
    assert renderer.render_string("{{ outputs.b.value }}", variables) == "[1,2]"
    assert renderer.render_string("{{ inputs.optional }}", variables) == ""
    assert renderer.render_string("{{ inputs.flag }}", variables) == "true"
    assert renderer.render_string(["{{ inputs.n }}"], variables) == "[3]"
    assert renderer.render_string(5, variables) == "5"


@pytest.mark.parametrize(("expression", "expected"), [
    ("inputs.n > 2", True),
    ("inputs.n == 4", False),
    ("{{ inputs.n > 2 }}", True),
    ("outputs.a.value", 42),
    ("inputs.optional ?? 'fallback'", "fallback"),
    ("outputs.missing is defined", False),
    ("inputs.name in ['world', 'earth']", True),
    ("  inputs.n  ", 3),
])
def test_evaluate_bare_expressions_with_or_without_braces(renderer, variables, expression, expected):
    assert renderer.evaluate(expression, variables) == expected


def test_evaluate_passes_non_strings_through(renderer):
    assert renderer.evaluate(True, {}) is True


def test_evaluate_rejects_empty_and_trailing_garbage(renderer):
    with pytest.raises(ExpressionError, match="empty expression"):
        renderer.evaluate("  ", {})
    with pytest.raises(ExpressionError, match="syntax error"):
        renderer.evaluate("1 2", {})


def test_callables_from_variables_are_callable(renderer, variables):
    calls = []

    def secret(name):
        calls.append(name)
        return f"s3cr3t-{name}"

    def kv(key, namespace=None, errorOnMissing=True):  # noqa: N803
        return {"key": key, "namespace": namespace}

    variables.update(secret=secret, kv=kv, read=lambda path: f"content of {path}",
                     render=lambda value: renderer.render(value, variables))
    assert renderer.render("{{ secret('DB') }}", variables) == "s3cr3t-DB"
    assert renderer.render("{{ kv('k', namespace='ns') }}", variables) == {"key": "k", "namespace": "ns"}
    assert renderer.render("{{ read('a.txt') | upper }}", variables) == "CONTENT OF A.TXT"
    assert renderer.render("{{ render('{{ inputs.n }}') }}", variables) == 3
    assert calls == ["DB"]


def test_a_failing_callable_becomes_an_expression_error_keeping_the_cause(renderer):
    class SecretNotFound(Exception):
        pass

    def secret(name):
        raise SecretNotFound(f"no secret {name}")

    with pytest.raises(ExpressionError, match=r"secret\(\) failed: no secret X") as info:
        renderer.render("{{ secret('X') }}", {"secret": secret})
    assert isinstance(info.value.__cause__.__cause__, SecretNotFound)


def test_a_key_error_shows_its_message_unquoted(renderer):
    def kv(key):
        raise KeyError(f"kv key `{key}` not found")

    with pytest.raises(ExpressionError) as info:
        renderer.render("{{ kv('k') }}", {"kv": kv})
    assert info.value.message == "kv() failed: kv key `k` not found"


def test_nested_render_errors_keep_their_message(renderer, variables):
    variables["render"] = lambda value: renderer.render(value, variables)
    with pytest.raises(ExpressionError, match="`nope` is undefined"):
        renderer.render("{{ render('{{ nope }}') }}", variables)


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ inputs.optional ?? 'd' }}", "d"),
    ("{{ inputs.n ?? 'd' }}", 3),
    ("{{ outputs.missing.value ?? 'd' }}", "d"),
    ("{{ nope ?? also_nope ?? 7 }}", 7),
    ("{{ inputs.optional ??? 'd' }}", None),
    ("{{ nope ??? 'd' }}", "d"),
    ("{{ inputs.optional ?? 1 + 1 }}", 2),
    ("{{ (inputs.optional ?? 1) * 10 }}", 10),
    ("{{ inputs.n ?? 0 + 1 }}", 4),
    ("{{ '??' ~ (nope ?? '!') }}", "??!"),
    ("{{ \"a??b\" }}", "a??b"),
    ("text ?? stays {{ nope ?? 'x' }}", "text ?? stays x"),
    ("{% if (nope ?? false) %}yes{% else %}no{% endif %}", "no"),
    ("{% set x = inputs.optional ?? 5 %}{{ x }}", "5"),
    ("{{ [nope ?? 1, inputs.n ?? 2] }}", [1, 3]),
    ("{{ {'k': inputs.optional ?? {'a': 1}} }}", {"k": {"a": 1}}),
    ("{{ outputs.b.value[9] ?? 'none' }}", "none"),
])
def test_null_coalescing_operator(renderer, variables, source, expected):
    assert renderer.render(source, variables) == expected


def test_null_coalescing_evaluates_each_side_at_most_once(renderer):
    calls = []

    def f(x):
        calls.append(x)
        return x

    assert renderer.render("{{ f(1) ?? f(2) }}", {"f": f}) == 1
    assert calls == [1]
    calls.clear()
    assert renderer.render("{{ f(none) ?? f(2) }}", {"f": f}) == 2
    assert calls == [None, 2]


def test_a_literal_semicolon_in_code_is_a_syntax_error(renderer):
    with pytest.raises(ExpressionError, match="unexpected ';'"):
        renderer.render("{{ 1 ; 2 }}", {})
    assert renderer.render("a;b {{ 'c;d' }}", {}) == "a;b c;d"


def test_map_keys_win_over_dict_methods(renderer, variables):
    assert renderer.render("{{ outputs.items.value }}", variables) == "task named items"
    assert renderer.render("{{ outputs.a.items() | list }}", variables) == [("value", 42)]


def test_compiled_templates_are_cached_by_source():
    renderer = Renderer(cache_size=4)
    renderer.render("{{ inputs.n + 0 }}", {"inputs": {"n": 1}})
    assert renderer.render("{{ inputs.n + 0 }}", {"inputs": {"n": 2}}) == 2
    info = renderer._compile.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (1, 1, 4)


def test_compiled_code_is_shared_by_processes_through_the_cache_file(tmp_path):
    cache = tmp_path / "cache" / "expressions"
    first = Renderer(cache_file=cache)
    assert first.render("{{ inputs.n | int + 1 }}", {"inputs": {"n": "1"}}) == 2
    first.save_cache()
    second = Renderer(cache_file=cache)
    assert second.render("{{ inputs.n | int + 1 }}", {"inputs": {"n": "41"}}) == 42
    assert second.jinja._new == 0  # taken from the file, not compiled again
    cache.write_bytes(b"not a cache")  # a damaged or foreign cache is ignored, never an error
    assert Renderer(cache_file=cache).render("{{ inputs.n | int * 2 }}", {"inputs": {"n": "4"}}) == 8


def test_templates_without_loops_or_calls_are_cheap_enough_for_an_event_loop():
    renderer = Renderer()
    assert renderer.is_cheap("{{ outputs.t.value | int + 1 }}")
    assert renderer.is_cheap({"a": ["{{ inputs.x | upper }}"]})
    assert not renderer.is_cheap("{{ range(100000) | sum }}")
    assert not renderer.is_cheap("{% for i in inputs.items %}{{ i }}{% endfor %}")


@pytest.mark.parametrize("template", [
    "{{ outputs.t.value }}", "v={{ outputs.t.value }}!", "{{ outputs['my-task'].items[1] }}", "{{ flag }} {{ n }}",
    "{{ none }}", "[{{ none }}]", "{{ outputs.t }}", "a {{ n }} b {{ flag }}", "{{ outputs['my-task'].items }}",
])
def test_variable_paths_skip_compiling_with_the_same_results(template):
    """Plain variable paths are looked up directly; the result is what Jinja gives."""
    variables = {"outputs": {"t": {"value": "42"}, "my-task": {"items": [1, {"k": True}]}}, "flag": True, "n": 3,
                 "none": None}
    fast = Renderer()
    wrapped = template.replace(" }}", " if true else 0 }}")  # same value, but not a plain path: compiled by Jinja
    assert fast.render(template, variables) == Renderer().render(wrapped, variables)
    assert fast._compile.cache_info().misses == 0  # the plain path was not compiled


def test_renderer_is_thread_safe(renderer):
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        return renderer.render("{{ x ?? 0 }}-{{ range(3) | list }}", {"x": i})

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, range(200))) == [f"{i}-[0,1,2]" for i in range(200)]
