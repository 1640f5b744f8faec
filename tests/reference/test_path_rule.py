"""The proxy path's pattern in the OpenAPI document says what ``http_paths.check_path`` does.

The rule decodes a path up to three times; the document spells it as one regular expression with
look-aheads. Hypothesis draws paths from the pieces where the two could part (escapes of '%', '.',
'/', backslash and control characters, at every depth), and the two must agree on every one."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from keyhole.api.polytomic.schemas import _PROXY_PATH
from keyhole.errors import KeyholeError
from keyhole.http_paths import check_path

PIECES = [
    *"/.%25eEfFcC017a\\?#~ ",
    "%2e",
    "%2E",
    "%2f",
    "%2F",
    "%25",
    "%5c",
    "%5C",
    "%00",
    "%1f",
    "%7f",
    "%41",
    "\x01",
    "\x7f",
    "é",
]
PATTERN = re.compile(_PROXY_PATH)


def _accepted(path: str) -> bool:
    try:
        check_path(path)
    except KeyholeError:
        return False
    return True


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_the_documented_pattern_is_the_rule(rest: str) -> None:
    path = "/" + rest
    assert bool(PATTERN.search(path)) == _accepted(path), path


@given(st.sampled_from(PIECES))
def test_a_path_must_start_with_one_slash(first: str) -> None:
    assert bool(PATTERN.search(first)) == _accepted(first)
