"""Every function and filter Tiercel adds (and the Jinja ones it changes)."""

import base64
import datetime as dt
import hashlib
import re
import uuid

import pytest

from tiercel.expr import ExpressionError

UTC = dt.UTC
MOMENT = dt.datetime(2024, 1, 31, 10, 5, 9, 123456, tzinfo=UTC)


def r(renderer, source, **variables):
    return renderer.render(source, variables)


# -- functions ---------------------------------------------------------------------------------

def test_now_is_timezone_aware_utc_and_takes_a_zone(renderer):
    before = dt.datetime.now(UTC)
    value = r(renderer, "{{ now() }}")
    assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)
    assert before <= value <= dt.datetime.now(UTC)
    paris = r(renderer, "{{ now('Europe/Paris') }}")
    assert str(paris.tzinfo) == "Europe/Paris"
    assert r(renderer, "{{ now(timeZone='UTC') }}").tzinfo == UTC
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", r(renderer, "at {{ now() }}")[3:])


def test_uuid_is_a_fresh_uuid_string(renderer):
    a, b = r(renderer, "{{ uuid() }}"), r(renderer, "{{ uuid() }}")
    assert uuid.UUID(a) and a != b


def test_from_json_and_its_json_alias_parse(renderer):
    assert r(renderer, "{{ fromJson('{\"a\": [1, 2]}') }}") == {"a": [1, 2]}
    assert r(renderer, "{{ json('[1, null]') }}") == [1, None]
    assert r(renderer, "{{ fromJson(x).a }}", x='{"a": 5}') == 5
    assert r(renderer, "{{ fromJson(x) }}", x={"already": "parsed"}) == {"already": "parsed"}


def test_yaml_function_parses_safely(renderer):
    assert r(renderer, "{{ yaml('a: 1\\nb: [x, y]') }}") == {"a": 1, "b": ["x", "y"]}
    with pytest.raises(ExpressionError, match="yaml"):
        r(renderer, "{{ yaml('!!python/object/apply:os.system [ls]') }}")


def test_range_is_jinjas(renderer):
    assert r(renderer, "{{ range(3) | list }}") == [0, 1, 2]
    assert r(renderer, "{{ range(1, 10, 4) | list }}") == [1, 5, 9]


def test_random_int_is_within_lower_inclusive_upper_exclusive(renderer):
    values = {r(renderer, "{{ randomInt(1, 4) }}") for _ in range(200)}
    assert values == {1, 2, 3}


# -- JSON and YAML -------------------------------------------------------------------------------

def test_json_and_to_json_are_compact_with_iso_dates(renderer):
    value = {"a": [1, 2.5, None, True], "when": MOMENT, "day": dt.date(2024, 1, 31), "é": "ü"}
    expected = '{"a":[1,2.5,null,true],"when":"2024-01-31T10:05:09.123456Z","day":"2024-01-31","é":"ü"}'
    assert r(renderer, "{{ v | toJson }}", v=value) == expected
    assert r(renderer, "{{ v | json }}", v=value) == expected
    assert r(renderer, "{{ v | tojson }}", v=value) == expected
    assert r(renderer, "{{ 'a\"b' | toJson }}") == '"a\\"b"'


def test_from_json_filter_and_invalid_json_message(renderer):
    assert r(renderer, "{{ '{\"a\": 1}' | fromJson }}") == {"a": 1}
    with pytest.raises(ExpressionError, match=r"filter `fromJson` failed: invalid JSON at line 1, column 1"):
        r(renderer, "{{ 'nope' | fromJson }}")


def test_yaml_filter(renderer):
    assert r(renderer, "{{ v | yaml }}", v={"a": 1, "b": ["x", MOMENT]}) == \
        "a: 1\nb:\n- x\n- '2024-01-31T10:05:09.123456Z'\n"
    assert r(renderer, "{{ 'plain' | yaml }}") == "plain\n"


def test_is_json_test(renderer):
    assert r(renderer, "{{ '{\"a\": 1}' is json }}") is True
    assert r(renderer, "{{ 'nope' is json }}") is False
    assert r(renderer, "{{ 5 is json }}") is False


# -- dates ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "expected"), [
    ("iso", "2024-01-31T10:05:09.123456Z"),
    ("iso_sec", "2024-01-31T10:05:09Z"),
    ("sql", "2024-01-31 10:05:09.123456"),
    ("sql_seq", "2024-01-31 10:05:09"),
    ("iso_date_time", "2024-01-31T10:05:09.123456Z"),
    ("iso_instant", "2024-01-31T10:05:09.123456Z"),
    ("iso_local_date", "2024-01-31"),
    ("iso_date", "2024-01-31Z"),
    ("iso_local_time", "10:05:09.123456"),
    ("rfc_1123_date_time", "Wed, 31 Jan 2024 10:05:09 GMT"),
    ("yyyy-MM-dd HH:mm:ss", "2024-01-31 10:05:09"),
    ("dd/MM/yy 'at' h:mm a", "31/01/24 at 10:05 AM"),
    ("EEEE d MMMM yyyy", "Wednesday 31 January 2024"),
    ("EEE, MMM d", "Wed, Jan 31"),
    ("yyyyMMdd'T'HHmmssSSSXX", "20240131T100509123Z"),
    ("'quote''s' yyyy", "quote's 2024"),
    ("%Y-%m-%d %H:%M", "2024-01-31 10:05"),
    ("D", "31"),
])
def test_date_formats(renderer, fmt, expected):
    assert r(renderer, "{{ d | date(f) }}", d=MOMENT, f=fmt) == expected


def test_date_accepts_iso_strings_epoch_numbers_dates_and_naive_datetimes(renderer):
    assert r(renderer, "{{ '2024-01-31T10:05:09Z' | date('iso_sec') }}") == "2024-01-31T10:05:09Z"
    assert r(renderer, "{{ '2024-01-31T10:05:09.5+02:00' | date('iso') }}") == "2024-01-31T10:05:09.500000+02:00"
    assert r(renderer, "{{ '2024-01-31T00:00:00Z[UTC]' | date('yyyy-MM-dd') }}") == "2024-01-31"
    assert r(renderer, "{{ '2024-01-31' | date('iso_sec') }}") == "2024-01-31T00:00:00Z"
    assert r(renderer, "{{ 1706695509 | date('iso_sec') }}") == "2024-01-31T10:05:09Z"
    assert r(renderer, "{{ 1706695509.25 | date('iso') }}") == "2024-01-31T10:05:09.250000Z"
    assert r(renderer, "{{ d | date('iso_sec') }}", d=dt.date(2024, 1, 31)) == "2024-01-31T00:00:00Z"
    assert r(renderer, "{{ d | date('iso_sec') }}", d=dt.datetime(2024, 1, 31, 10)) == "2024-01-31T10:00:00Z"
    assert r(renderer, "{{ d | date }}", d=MOMENT) == "2024-01-31T10:05:09.123456Z"


def test_date_time_zone_and_existing_format(renderer):
    assert r(renderer, "{{ d | date('yyyy-MM-dd HH:mm XXX', timeZone='Europe/Paris') }}", d=MOMENT) == \
        "2024-01-31 11:05 +01:00"
    assert r(renderer, "{{ d | date('HH:mm VV', timeZone='America/New_York') }}", d=MOMENT) == \
        "05:05 America/New_York"
    assert r(renderer, "{{ '31/01/2024 10:05' | date('iso_sec', existingFormat='dd/MM/yyyy HH:mm') }}") == \
        "2024-01-31T10:05:00Z"
    with pytest.raises(ExpressionError, match="unknown time zone 'Mars/Base'"):
        r(renderer, "{{ d | date('iso', timeZone='Mars/Base') }}", d=MOMENT)
    with pytest.raises(ExpressionError, match="not an ISO-8601 date"):
        r(renderer, "{{ 'yesterday' | date }}")
    with pytest.raises(ExpressionError, match="unsupported date pattern letter 'Q'"):
        r(renderer, "{{ d | date('QQ') }}", d=MOMENT)


@pytest.mark.parametrize(("amount", "unit", "expected"), [
    (30, "SECONDS", "2024-01-31T10:05:39Z"),
    (-5, "MINUTES", "2024-01-31T10:00:09Z"),
    (3, "HOURS", "2024-01-31T13:05:09Z"),
    (1, "DAYS", "2024-02-01T10:05:09Z"),
    (-1, "WEEKS", "2024-01-24T10:05:09Z"),
    (1, "MONTHS", "2024-02-29T10:05:09Z"),
    (-13, "months", "2022-12-31T10:05:09Z"),
    (1, "YEARS", "2025-01-31T10:05:09Z"),
])
def test_date_add(renderer, amount, unit, expected):
    moment = MOMENT.replace(microsecond=0)
    result = r(renderer, "{{ d | dateAdd(a, u) }}", d=moment, a=amount, u=unit)
    assert isinstance(result, dt.datetime)
    assert r(renderer, "{{ d | dateAdd(a, u) | date('iso_sec') }}", d=moment, a=amount, u=unit) == expected


def test_date_add_keeps_wall_clock_across_dst_and_formats(renderer):
    before = "2024-03-30T12:00:00+01:00"
    assert r(renderer, "{{ d | dateAdd(1, 'DAYS', timeZone='Europe/Paris') | date('iso_sec') }}", d=before) == \
        "2024-03-31T12:00:00+02:00"
    assert r(renderer, "{{ '2024-01-31' | dateAdd(1, 'DAYS', format='yyyy-MM-dd') }}") == "2024-02-01"
    assert r(renderer, "{{ now() | dateAdd(-1, 'DAYS') < now() }}") is True
    with pytest.raises(ExpressionError, match="unknown unit 'FORTNIGHTS'"):
        r(renderer, "{{ now() | dateAdd(1, 'FORTNIGHTS') }}")


def test_timestamps(renderer):
    assert r(renderer, "{{ d | timestamp }}", d=MOMENT) == 1706695509
    assert r(renderer, "{{ d | timestampMilli }}", d=MOMENT) == 1706695509123
    assert r(renderer, "{{ d | timestampMicro }}", d=MOMENT) == 1706695509123456
    assert r(renderer, "{{ d | timestampNano }}", d=MOMENT) == 1706695509123456000
    assert r(renderer, "{{ '1970-01-01T00:01:00Z' | timestamp }}") == 60


# -- collections ---------------------------------------------------------------------------------

def test_keys_values_flatten_chunk_merge(renderer):
    m = {"b": 1, "a": 2}
    assert r(renderer, "{{ m | keys }}", m=m) == ["b", "a"]
    assert r(renderer, "{{ m | values }}", m=m) == [1, 2]
    assert r(renderer, "{{ [[1, 2], [3], 4] | flatten }}") == [1, 2, 3, 4]
    assert r(renderer, "{{ range(5) | chunk(2) }}") == [[0, 1], [2, 3], [4]]
    assert r(renderer, "{{ m | merge({'c': 3}) }}", m=m) == {"b": 1, "a": 2, "c": 3}
    assert r(renderer, "{{ [1] | merge([2]) }}") == [1, 2]
    assert r(renderer, "{{ [1, 3, 2] | rsort }}") == [3, 2, 1]
    with pytest.raises(ExpressionError, match="filter `keys` failed: keys needs a map, got a list"):
        r(renderer, "{{ [1] | keys }}")
    with pytest.raises(ExpressionError, match="chunk size must be at least 1"):
        r(renderer, "{{ [1] | chunk(0) }}")


def test_jq_is_real_jq(renderer):
    doc = {"a": {"b": [{"c": 1}, {"c": 2}]}, "k": "v", "weird key": 3}
    assert r(renderer, "{{ d | jq('.') }}", d=doc) == [doc]
    assert r(renderer, "{{ d | jq('.k') | first }}", d=doc) == "v"
    assert r(renderer, "{{ d | jq('.a.b[0].c') }}", d=doc) == [1]
    assert r(renderer, "{{ d | jq('.a.b[-1].c') }}", d=doc) == [2]
    assert r(renderer, "{{ d | jq('.a.b[].c') }}", d=doc) == [1, 2]
    assert r(renderer, "{{ d | jq('.a.b | .[] | .c') }}", d=doc) == [1, 2]
    assert r(renderer, "{{ d | jq('.[\"weird key\"]') }}", d=doc) == [3]
    assert r(renderer, "{{ d | jq('.\"weird key\"') }}", d=doc) == [3]
    assert r(renderer, "{{ d | jq('.missing.deeper') }}", d=doc) == [None]
    assert r(renderer, "{{ d | jq('.a.b[5]') }}", d=doc) == [None]
    assert r(renderer, "{{ d | jq('.a.b[0:1]') }}", d=doc) == [[{"c": 1}]]
    assert r(renderer, "{{ d | jq('.a.b | length') }}", d=doc) == [2]
    assert r(renderer, "{{ d | jq('keys') }}", d=doc) == [["a", "k", "weird key"]]
    assert r(renderer, "{{ '{\"x\": [5]}' | jq('.x[0]') }}") == [5]
    assert r(renderer, "{{ d | jq('.k.x?') }}", d=doc) == []
    with pytest.raises(ExpressionError, match=r"Cannot index string with string"):
        r(renderer, "{{ d | jq('.k.x') }}", d=doc)
    assert r(renderer, "{{ d | jq('.a.b | map(.c) | add') | first }}", d=doc) == 3
    assert r(renderer, "{{ d | jq('.a.b[] | select(.c > 1) | .c') }}", d=doc) == [2]
    assert r(renderer, "{{ d | jq('[.a.b[].c] | sort_by(-.) ') | first }}", d=doc) == [2, 1]
    with pytest.raises(ExpressionError, match="syntax error"):
        r(renderer, "{{ d | jq('.[') }}", d=doc)
    with pytest.raises(ExpressionError, match="jq results would be"):  # an endless generator is bounded
        r(renderer, "{{ 1 | jq('repeat(1)') }}")


# -- strings -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "expected"), [
    ("{{ 'Héllo, Wörld! 2024' | slugify }}", "hello-world-2024"),
    ("{{ '42' | number }}", 42),
    ("{{ ' 4.5 ' | number }}", 4.5),
    ("{{ '7' | number('DOUBLE') }}", 7.0),
    ("{{ '7' | number('LONG') }}", 7),
    ("{{ 'report.csv' | startsWith('rep') }}", True),
    ("{{ 'report.csv' | endsWith('.json') }}", False),
    ("{{ 'a.b.c' | substringBefore('.') }}", "a"),
    ("{{ 'a.b.c' | substringAfter('.') }}", "b.c"),
    ("{{ 'a.b.c' | substringBeforeLast('.') }}", "a.b"),
    ("{{ 'a.b.c' | substringAfterLast('.') }}", "c"),
    ("{{ 'abc' | substringBefore('x') }}", "abc"),
    ("{{ 'abc' | substringAfter('x') }}", ""),
    ("{{ 'abc' | substringBeforeLast('x') }}", "abc"),
    ("{{ 'abc' | substringAfterLast('x') }}", ""),
    ("{{ 'hi there' | base64encode }}", base64.b64encode(b"hi there").decode()),
    ("{{ 'aGkgdGhlcmU=' | base64decode }}", "hi there"),
    ("{{ 'abc' | sha256 }}", hashlib.sha256(b"abc").hexdigest()),
    ("{{ 'abc' | md5 }}", hashlib.md5(b"abc").hexdigest()),  # noqa: S324
    ("{{ 'abc' | sha1 }}", hashlib.sha1(b"abc").hexdigest()),  # noqa: S324
    ("{{ 'abc' | sha512 }}", hashlib.sha512(b"abc").hexdigest()),
    ("{{ 'a b&c/d' | urlencode }}", "a%20b%26c/d"),
    ("{{ {'q': 'a b', 'n': 1} | urlencode }}", "q=a+b&n=1"),
    ("{{ 'a+b%26c' | urldecode }}", "a b&c"),
    ("{{ 'a,b,,c' | split(',') }}", ["a", "b", "", "c"]),
    ("{{ 'a,b,c' | split(',', 2) }}", ["a", "b,c"]),
    ("{{ 'hello' | slice(1, 3) }}", "el"),
    ("{{ [1, 2, 3] | slice(1) }}", [2, 3]),
    ("{{ 'aXbX' | replace('X', '-') }}", "a-b-"),
    ("{{ 'ab' | replace({'a': '1', 'b': '2'}) }}", "12"),
    ("{{ 'a long sentence' | abbreviate(9) }}", "a long..."),
    ("{{ 'short' | abbreviate(9) }}", "short"),
    ("{{ 'a\nb' | indent(2) }}", "a\n  b"),
    ("{{ 'a\nb' | nindent(2) }}", "\n  a\n  b"),
    ("{{ [1, true, none] | join(',') }}", "1,true,"),
    ("{{ 'x' | center(5) }}", "  x  "),
    ("{{ '%s-%s' | format(1, 2) }}", "1-2"),
    ("{{ 5 | string }}", "5"),
    ("{{ [1, 2] | string }}", "[1,2]"),
])
def test_string_filters(renderer, source, expected):
    assert r(renderer, source) == expected


def test_base64decode_and_number_errors(renderer):
    with pytest.raises(ExpressionError, match="filter `base64decode` failed: invalid base64"):
        r(renderer, "{{ '***' | base64decode }}")
    with pytest.raises(ExpressionError, match="filter `number` failed: 'abc' is not a number"):
        r(renderer, "{{ 'abc' | number }}")


def test_default_also_replaces_null(renderer):
    assert r(renderer, "{{ x | default('d') }}", x=None) == "d"
    assert r(renderer, "{{ missing | default('d') }}") == "d"
    assert r(renderer, "{{ missing.deep.path | d('d') }}") == "d"
    assert r(renderer, "{{ x | default('d') }}", x=0) == 0
    assert r(renderer, "{{ x | default('d', true) }}", x="") == "d"


def test_kestra_tests_null_empty_map(renderer):
    assert r(renderer, "{{ x is null }}", x=None) is True
    assert r(renderer, "{{ x is empty }}", x=[]) is True
    assert r(renderer, "{{ x is empty }}", x="a") is False
    assert r(renderer, "{{ x is map }}", x={}) is True
    assert r(renderer, "{{ x == null }}", x=None) is True


def test_jinja_builtins_remain(renderer):
    assert r(renderer, "{{ [3, 1, 2] | sort | first }}") == 1
    assert r(renderer, "{{ 'abc' | upper }}") == "ABC"
    assert r(renderer, "{{ [1, 2] | length }}") == 2
    assert r(renderer, "{{ {'a': 1} | items | list }}") == [("a", 1)]
    assert r(renderer, "{{ 'a b' | title }}") == "A B"
