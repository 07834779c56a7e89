"""Known Jinja2 SSTI payloads and resource abuse fail safely with ExpressionError."""

import pytest

from tiercel.expr import ExpressionError

PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__[2].__subclasses__()[40]('/etc/passwd').read() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "{{ config }}",
    "{{ config.__class__.__init__.__globals__['os'] }}",
    "{{ request }}",
    "{{ request.application.__globals__.__builtins__.__import__('os') }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ namespace.__init__ }}",
    "{{ ().__class__.__base__ }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{{ {}.__class__ }}",
    "{{ range.__self__ }}",
    "{{ range.__globals__ }}",
    "{{ now.__globals__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ (''|attr('\\x5f\\x5fclass\\x5f\\x5f')) }}",
    "{{ ()|attr('__class__')|attr('__base__')|attr('__subclasses__')() }}",
    "{{ ['x'] | map(attribute='__class__') | list }}",
    "{{ ['x'] | map(attribute='__class__') | first }}",
    "{{ ''['__class__'] }}",
    "{{ ''['\\x5f\\x5fclass\\x5f\\x5f'] }}",
    "{{ getattr('', '__class__') }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{% set c = ''.__class__ %}{{ c.__mro__ }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ '{0.__class__.__mro__}'.format_map({'a': 1}) }}",
    "{{ '%s' % ''.__class__ }}",
    "{{ x.__class__ }}",
    "{{ f.__globals__ }}",
    "{{ f.__code__ }}",
    "{{ f.func_globals }}",
    "{{ gen.gi_frame }}",
    "{{ gen.gi_code }}",
    "{{ now().__class__ }}",
    "{{ fromJson.__module__ }}",
    "{{ __import__('os') }}",
    "{{ import('os') }}",
    "{% import 'os' as os %}",
    "{% include '/etc/passwd' %}",
    "{% extends '/etc/passwd' %}",
    "{% from 'x' import y %}",
    "{{ open('/etc/passwd').read() }}",
    "{{ eval('1') }}",
    "{{ exec('1') }}",
    "{{ dict.__init__ }}",
    "{{ dict(a=1).pop('a') }}",
    "{{ x.append(1) }}",
    "{{ x.clear() }}",
    "{{ d.update({'k': 1}) }}",
    "{{ d.setdefault('k', 1) }}",
    "{{ s.add(1) }}",
    "{{ lipsum() }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_ssti_payloads_fail_safely(renderer, payload):
    variables = {"x": [1, 2], "d": {"a": 1}, "s": {1}, "f": lambda: 1, "gen": (i for i in range(1))}
    with pytest.raises(ExpressionError):
        renderer.render(payload, variables)
    assert variables["x"] == [1, 2] and variables["d"] == {"a": 1} and variables["s"] == {1}


def test_sandbox_violations_say_they_are_not_allowed(renderer):
    with pytest.raises(ExpressionError) as info:
        renderer.render("{{ ''.__class__ }}", {})
    assert info.value.message.startswith("`__class__` is not allowed: access to attribute '__class__'")
    assert "sandboxed" in info.value.message
    with pytest.raises(ExpressionError, match="`append` is not allowed"):
        renderer.render("{{ x.append(1) }}", {"x": []})
    with pytest.raises(ExpressionError, match="not allowed"):
        renderer.render("{{ '{0.__class__}'.format('') }}", {})


def test_context_values_cannot_be_mutated(renderer):
    outputs = {"a": {"rows": [1, 2]}}
    for source in ("{{ outputs.a.rows.append(3) }}", "{{ outputs.a.rows.extend([3]) }}",
                   "{{ outputs.a.update({'x': 1}) }}", "{{ outputs.a.rows.pop() }}",
                   "{% set _ = outputs.a.rows.append(3) %}", "{{ outputs.a.rows.sort(reverse=true) }}"):
        with pytest.raises(ExpressionError):
            renderer.render(source, {"outputs": outputs})
    assert outputs == {"a": {"rows": [1, 2]}}


def test_local_set_and_namespace_are_allowed(renderer):
    source = "{% set ns = namespace(total=0) %}{% for i in [1, 2, 3] %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}"
    assert renderer.render(source, {}) == "6"


@pytest.mark.parametrize("payload", [
    "{{ range(100001) | list }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'a' * 100000000 }}",
    "{{ [0] * 1000001 }}",
    "{{ range(1000) | int(10 ** 6) * [1, 2] }}",
    "{{ ('x' * 100000) | join('y' * 1000) }}",
    "{{ 'x' | indent(1000000000) }}",
    "{{ 100000000 * 'a' }}",
    "{{ 9 ** (9 ** 9) }}",
    "{{ 2 ** 10000000 }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ 'x'.center(1000000000) }}",
    "{{ 'x'.ljust(1000000000) }}",
    "{{ 'x'.zfill(1000000000) }}",
    "{{ ('\t' * 1000).expandtabs(100000000) }}",
    "{{ ('a' * 10000).replace('a', 'b' * 10000) }}",
    "{{ ('a' * 10000) | replace('a', 'b' * 10000) }}",
    "{{ ('a' * 5000000).join(['x', 'y', 'z']) }}",
    "{{ ('a' * 5000000) ~ ('b' * 5000001) }}",
    "{{ ('a' * 5000000) + ('b' * 5000001) }}",
    "{{ 'x' | center(1000000000) }}",
    "{{ ('\n' * 100000) | indent(1000) }}",
    "{{ '%s' | format('') ~ '{:>99999999}' | format(1) }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
    "{% set ns = namespace(x=2 ** 60000) %}{% for i in range(30) %}{% set ns.x = ns.x * ns.x %}{% endfor %}",
    "{{ [1] | batch(1000000000, 0) | list }}",
    "{{ now() | timestamp('.a') }}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l }}",
    "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}{{ ns.l | toJson }}",
    "{{ yaml('a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\\n"
    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]') }}",
    "{{ yaml('&a [*a]') }}",
])
def test_resource_abuse_is_bounded(renderer, payload):
    with pytest.raises(ExpressionError):
        renderer.render(payload, {})


def test_limits_leave_normal_work_alone(renderer):
    assert len(renderer.render("{{ 'a' * 1000000 }}", {})) == 1_000_000
    assert renderer.render("{{ 2 ** 64 }}", {}) == 2**64
    assert renderer.render("{{ range(100000) | length }}", {}) == 100000
    assert renderer.render("{{ '%05d' % 42 }}", {}) == "00042"
    assert renderer.render("{{ '-'.join(range(3) | map('string')) }}", {}) == "0-1-2"
    assert renderer.render("{{ 'a{}'.format(1) ~ 'x'.center(3) ~ 'ab'.replace('a', 'c') }}", {}) == "a1 x cb"
