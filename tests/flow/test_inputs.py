"""Input resolution: coercion by type, defaults, required, validators, bounds, files."""

import textwrap

import pytest

from tiercel.flow.inputs import InputError, resolve_inputs


@pytest.fixture
def make(load):
    def _make(inputs_yaml):
        text = "id: f\nnamespace: n\ninputs:\n" + textwrap.indent(textwrap.dedent(inputs_yaml), "  ") + \
            "tasks: [{id: a, type: test.Log, message: x}]\n"
        return load(text)

    return _make


def test_strings_from_cli_are_coerced(make):
    f = make("""
        - {id: s, type: STRING}
        - {id: i, type: INT}
        - {id: x, type: FLOAT}
        - {id: b, type: BOOLEAN}
        - {id: dt, type: DATETIME}
        - {id: d, type: DATE}
        - {id: t, type: TIME}
        - {id: du, type: DURATION}
        - {id: j, type: JSON}
        - {id: y, type: YAML}
        - {id: u, type: URI}
        - {id: e, type: EMAIL}
        - {id: sel, type: SELECT, values: [a, b]}
        - {id: ms, type: MULTISELECT, values: [a, b, c]}
        - {id: arr, type: ARRAY, itemType: INT}
        - {id: sec, type: SECRET}
    """)
    raw = {"s": "hi", "i": "42", "x": "1.5", "b": "TRUE", "dt": "2024-01-31T10:00:00Z", "d": "2024-01-31",
           "t": "10:30", "du": "PT30S", "j": '{"a": [1]}', "y": "a: 1", "u": "https://x.dev/p", "e": "a@b.io",
           "sel": "b", "ms": "a,c", "arr": "[1, 2]", "sec": "pw"}
    assert resolve_inputs(f, raw) == {
        "s": "hi", "i": 42, "x": 1.5, "b": True, "dt": "2024-01-31T10:00:00+00:00", "d": "2024-01-31",
        "t": "10:30:00", "du": "PT30S", "j": {"a": [1]}, "y": {"a": 1}, "u": "https://x.dev/p", "e": "a@b.io",
        "sel": "b", "ms": ["a", "c"], "arr": [1, 2], "sec": "pw"}


def test_json_values_from_api(make):
    f = make("""
        - {id: i, type: INT}
        - {id: ms, type: MULTISELECT, values: [a, b]}
        - {id: j, type: JSON}
    """)
    assert resolve_inputs(f, {"i": 3, "ms": ["a"], "j": {"k": 1}}) == {"i": 3, "ms": ["a"], "j": {"k": 1}}


def test_defaults_and_optional(make):
    f = make("""
        - {id: name, type: STRING, defaults: world}
        - {id: n, type: INT, defaults: 5}
        - {id: opt, type: STRING, required: false}
        - {id: expr, type: STRING, defaults: "{{ now() }}"}
    """)
    assert resolve_inputs(f, {}) == {"name": "world", "n": 5, "opt": None, "expr": "{{ now() }}"}


def test_every_problem_named(make):
    f = make("""
        - {id: name, type: STRING}
        - {id: n, type: INT, min: 1, max: 10}
        - {id: code, type: STRING, validator: "[A-Z]{3}"}
        - {id: env, type: SELECT, values: [dev, prod]}
        - {id: b, type: BOOLEAN}
        - {id: when, type: DATE, after: "2024-01-01"}
        - {id: arr, type: ARRAY, itemType: INT}
    """)
    with pytest.raises(InputError) as info:
        resolve_inputs(f, {"n": "abc", "code": "ab", "env": "qa", "b": "maybe", "when": "2023-05-01",
                           "arr": "1,x", "nme": "x"})
    assert info.value.problems == [
        "unknown input `nme` (did you mean `name`?); the flow takes name, n, code, env, b, when, arr",
        "missing required input `name` (STRING)",
        'input `n`: expected INT, got "abc"',
        'input `code`: "ab" does not match the validator [A-Z]{3}',
        'input `env`: "qa" is not one of dev, prod',
        'input `b`: expected BOOLEAN (true or false), got "maybe"',
        'input `when`: "2023-05-01" must be after 2024-01-01',
        'input `arr`: item 1: expected INT, got "x"',
    ]
    with pytest.raises(InputError, match=r'input `n`: 11 is above the maximum 10'):
        resolve_inputs(f, {"name": "x", "n": 11, "code": "ABC", "env": "dev", "b": True, "when": "2024-02-02", "arr": []})


def test_secret_value_not_echoed(make):
    f = make("- {id: pw, type: SECRET, validator: '.{8,}'}\n")
    with pytest.raises(InputError) as info:
        resolve_inputs(f, {"pw": "short"})
    assert "short" not in str(info.value)


def test_duration_bounds(make):
    f = make("- {id: d, type: DURATION, max: PT1M}\n")
    with pytest.raises(InputError, match="above the maximum 60s"):
        resolve_inputs(f, {"d": "PT2M"})


def test_file_inputs_upload_paths(make, tmp_path):
    f = make("- {id: f, type: FILE, extension: .csv}\n")
    data = tmp_path / "d.csv"
    data.write_text("a,b\n")
    uploaded = []

    def upload(path):
        uploaded.append(path)
        return "tiercel://n/f/inputs/d.csv"

    assert resolve_inputs(f, {"f": str(data)}, upload=upload) == {"f": "tiercel://n/f/inputs/d.csv"}
    assert uploaded == [str(data)]
    assert resolve_inputs(f, {"f": "tiercel://n/f/x.csv"}, upload=upload) == {"f": "tiercel://n/f/x.csv"}
    with pytest.raises(InputError, match="no such file"):
        resolve_inputs(f, {"f": str(tmp_path / "missing.csv")}, upload=upload)
    with pytest.raises(InputError, match=r"input `f`: cannot upload .*d.csv: disk full"):
        resolve_inputs(f, {"f": str(data)}, upload=lambda path: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(InputError, match=r"must end with \.csv"):
        resolve_inputs(f, {"f": str(tmp_path / "x.txt")}, upload=upload)


def test_invalid_default_is_a_flow_error(errors):
    found = errors("id: f\nnamespace: n\ninputs:\n  - {id: n, type: INT, defaults: abc}\n"
                   "tasks: [{id: a, type: test.Log, message: x}]\n")
    assert [str(e) for e in found] == ['flow.yaml:4:5: input `n`: invalid default: expected INT, got "abc"']


def test_invalid_validator_regex(errors):
    found = errors("id: f\nnamespace: n\ninputs:\n  - {id: s, type: STRING, validator: '['}\n"
                   "tasks: [{id: a, type: test.Log, message: x}]\n")
    assert "invalid regular expression" in found[0].message and found[0].property == "inputs[0].validator"


ALL_TYPES = """
    - {id: s, type: STRING, validator: "[a-z]+", required: false}
    - {id: i, type: INT, min: 0, required: false}
    - {id: x, type: FLOAT, max: 5, required: false}
    - {id: b, type: BOOLEAN, required: false}
    - {id: dt, type: DATETIME, after: "2020-01-01T00:00:00Z", required: false}
    - {id: d, type: DATE, before: "2030-01-01", required: false}
    - {id: t, type: TIME, required: false}
    - {id: du, type: DURATION, min: PT1S, required: false}
    - {id: j, type: JSON, required: false}
    - {id: y, type: YAML, required: false}
    - {id: u, type: URI, required: false}
    - {id: e, type: EMAIL, required: false}
    - {id: sel, type: SELECT, values: [a, b], required: false}
    - {id: ms, type: MULTISELECT, values: [a, b], itemType: STRING, required: false}
    - {id: arr, type: ARRAY, itemType: DATETIME, required: false}
    - {id: sec, type: SECRET, required: false}
    - {id: f, type: FILE, required: false}
"""


def test_random_values_only_ever_raise_input_error(make):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    f = make(ALL_TYPES)
    ids = [spec.id for spec in f.inputs]
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
        max_leaves=8)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(ids + ["zz"]), json_values, max_size=6))
    def run(raw):
        try:
            resolve_inputs(f, raw, upload=lambda path: "tiercel://x")
        except InputError as exc:
            assert exc.problems

    run()
