"""Upstream JSON as an agent can trust it: parsed without losing a digit.

JSON readers in most agent hosts hold numbers as IEEE doubles, so an integer beyond ±(2^53-1)
or a decimal with more digits than a double keeps would silently change on the way. Such numbers
come back as strings carrying the upstream's exact digits; every other value is as parsed. A body
that is not JSON (or uses NaN/Infinity) stays text.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

_SAFE_INTEGER = 2**53 - 1


class _NotJson(ValueError):
    pass


def _integer(literal: str) -> int | str:
    value = int(literal)
    return value if -_SAFE_INTEGER <= value <= _SAFE_INTEGER else literal


def _number(literal: str) -> float | str:
    value = float(literal)
    try:
        exact = Decimal(literal) == Decimal(repr(value))
    except InvalidOperation:
        exact = False
    return value if exact else literal


def _constant(name: str) -> Any:
    raise _NotJson(name)


def exact_json(raw: bytes | str) -> Any:
    """A JSON document Keyhole itself wrote (a stored page of rows), numbers kept exact."""
    return json.loads(raw, parse_int=_integer, parse_float=_number)


def parse_json(text: str) -> tuple[bool, Any]:
    """``(True, value)`` for a JSON document a result can carry, ``(False, text)`` otherwise: a
    string escaping a lone surrogate, or nesting deeper than the result's encoder goes, stays
    the text it was."""
    try:
        value = json.loads(
            text.removeprefix("\ufeff"), parse_int=_integer, parse_float=_number, parse_constant=_constant
        )
        orjson.dumps(value)
    except (ValueError, RecursionError, orjson.JSONEncodeError):
        return False, text
    return True, value
