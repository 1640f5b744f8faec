"""Upstream JSON as the MCP tools return it (``keyhole.api.mcp.values``): no number changes on
the way to an agent whose JSON reader holds numbers as doubles.

The properties state the rule on the values themselves: an integer in ±(2^53-1) stays an
integer, one beyond becomes its exact digits; a decimal literal stays a float exactly when the
double it reads as prints back as the same number, else it becomes its literal; everything else
is as ``json`` reads it. Anything that is not JSON (NaN, Infinity, garbage) comes back as text."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyhole.api.mcp.values import exact_json, parse_json

SAFE = 2**53 - 1
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.integers(min_value=-SAFE - 3, max_value=-SAFE + 3)
    | st.integers(min_value=SAFE - 3, max_value=SAFE + 3)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
# Decimal literals as an upstream may write them: more digits than a double keeps, or not.
decimal_literals = st.from_regex(r"-?(0|[1-9][0-9]{0,25})\.[0-9]{1,30}([eE][-+]?[0-9]{1,3})?", fullmatch=True)


def expected(value: Any) -> Any:
    """``value`` as an agent must get it: integers beyond the safe range as their digits."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return value if -SAFE <= value <= SAFE else str(value)
    if isinstance(value, list):
        return [expected(item) for item in value]
    return {key: expected(item) for key, item in value.items()}


def assert_same(got: Any, want: Any) -> None:
    """Equal, and of the same JSON type all the way down (``True == 1`` and ``0.0 == -0.0`` are
    not enough: an int that became a float, or a sign lost, is a changed value)."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, float):
        assert got == want and math.copysign(1, got) == math.copysign(1, want), (got, want)
    elif isinstance(want, list):
        assert len(got) == len(want), (got, want)
        for one, other in zip(got, want, strict=True):
            assert_same(one, other)
    elif isinstance(want, dict):
        assert list(got) == list(want), (got, want)
        for key in want:
            assert_same(got[key], want[key])
    else:
        assert got == want, (got, want)


# -- examples --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("9007199254740991", 9007199254740991),
        ("-9007199254740991", -9007199254740991),
        ("9007199254740992", "9007199254740992"),
        ("-9007199254740992", "-9007199254740992"),
        ("12345678901234567890123", "12345678901234567890123"),
        ("0", 0),
        ("-0", 0),
        ("0.1", 0.1),
        ("1.5e300", 1.5e300),
        ("0.30000000000000004", 0.30000000000000004),
        ("3.141592653589793238462643383279", "3.141592653589793238462643383279"),
        ("0.1000000000000000055511151231257827", "0.1000000000000000055511151231257827"),
        ("1e400", "1e400"),  # a double reads it as infinity
        ("-1e400", "-1e400"),
        ("1e-400", "1e-400"),  # a double reads it as 0
        ("123456789012345678.5", "123456789012345678.5"),
        ('{"id": 18446744073709551615, "price": 19.99}', {"id": "18446744073709551615", "price": 19.99}),
        (
            '[1, 9007199254740993, "9007199254740993", true, null]',
            [1, "9007199254740993", "9007199254740993", True, None],
        ),
        ('"text"', "text"),
        ("true", True),
        ("null", None),
        ("{}", {}),
    ],
)
def test_numbers_keep_their_digits(text: str, value: Any) -> None:
    parsed, got = parse_json(text)
    assert parsed is True
    assert_same(got, value)


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "-Infinity",
        "Infinity",
        '{"a": NaN}',
        "[1, Infinity]",
        "",
        "   ",
        "{",
        "[1, 2",
        "{'a': 1}",
        '{"a": 1} trailing',
        "01",
        "1.",
        ".5",
        "+1",
        "0x10",
        "<html><body>not json</body></html>",
        "\ufeff\ufeff{}",  # only one byte order mark is a BOM; the second is content
        "[" * 100_000,  # nested past the parser's depth
        '{"a": ' * 50_000 + "1" + "}" * 50_000,
    ],
)
def test_what_is_not_json_stays_text(text: str) -> None:
    assert parse_json(text) == (False, text)


def test_a_leading_bom_is_ignored() -> None:
    assert parse_json('\ufeff{"a": [1, 9007199254740993]}') == (True, {"a": [1, "9007199254740993"]})
    assert parse_json("\ufeff12") == (True, 12)
    assert parse_json("\ufeffNaN") == (False, "\ufeffNaN")  # the text as it came, BOM and all


def test_exact_json_reads_bytes_and_text_alike() -> None:
    raw = '[{"n": 9007199254740993, "x": 0.1, "d": 2.00000000000000000001, "s": "é"}]'
    want = [{"n": "9007199254740993", "x": 0.1, "d": "2.00000000000000000001", "s": "é"}]
    assert_same(exact_json(raw), want)
    assert_same(exact_json(raw.encode()), want)


# -- properties ------------------------------------------------------------------------------


@PROPERTY
@given(document=documents, indent=st.sampled_from([None, 2]))
def test_any_document_parses_without_a_changed_number(document: Any, indent: int | None) -> None:
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    parsed, got = parse_json(text)
    assert parsed is True
    assert_same(got, expected(document))
    assert_same(exact_json(text), expected(document))
    assert_same(exact_json(text.encode()), expected(document))
    # And with a byte order mark in front, as some servers send it.
    assert parse_json("\ufeff" + text) == (True, got)


@PROPERTY
@given(number=st.integers(min_value=-(2**200), max_value=2**200))
def test_integers_stay_integers_exactly_in_the_safe_range(number: int) -> None:
    parsed, got = parse_json(json.dumps({"n": number}))
    assert parsed is True
    if -SAFE <= number <= SAFE:
        assert type(got["n"]) is int and got["n"] == number
    else:
        assert got["n"] == str(number)  # the exact digits, never a rounded double


@PROPERTY
@given(number=st.floats(allow_nan=False, allow_infinity=False))
def test_floats_that_round_trip_stay_floats(number: float) -> None:
    literal = json.dumps(number)  # the shortest digits that read back as this double
    parsed, got = parse_json(f'[{literal}, {{"x": {literal}}}]')
    assert parsed is True
    assert_same(got, [number, {"x": number}])


@PROPERTY
@given(literal=decimal_literals)
def test_decimal_literals_keep_their_value(literal: str) -> None:
    parsed, got = parse_json(f'{{"price": {literal}}}')
    assert parsed is True
    value = got["price"]
    as_double = float(literal)
    if math.isfinite(as_double) and Decimal(repr(as_double)) == Decimal(literal):
        # A double holds it: an agent's reader gets back exactly the literal's number.
        assert isinstance(value, float) and value == as_double
    else:
        # A double would change it: the exact literal, as a string.
        assert value == literal


def _no_constant(name: str) -> Any:
    raise ValueError(name)


@PROPERTY
@given(
    text=st.text(max_size=40)
    | st.sampled_from(["NaN", "Infinity", "-Infinity"]).map(lambda bad: f'{{"a": [1, {bad}]}}')
)
def test_garbage_is_text_or_json_never_an_exception(text: str) -> None:
    parsed, got = parse_json(text)
    stripped = text.removeprefix("\ufeff")
    try:
        json.loads(stripped, parse_constant=_no_constant)
    except ValueError:
        assert (parsed, got) == (False, text)
    else:  # it happened to be strict JSON
        assert parsed is True
