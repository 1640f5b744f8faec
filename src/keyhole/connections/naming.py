"""What a connection's name may be, whichever API names it: a name is shown in lists and logs, and
PostgreSQL text cannot hold NUL, so it holds 1 to 200 characters and no control character."""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 200
_CONTROL = r"\x00-\x1f\x7f"
NAME_PATTERN = rf"^[^{_CONTROL}]*$"
"""The rule's characters as a schema ``pattern`` (whose ``$`` matches only at the very end)."""
_CONTROL_CHARACTER = re.compile(rf"[{_CONTROL}]")


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a connection's name, or None when nothing is."""
    if not name:
        return "is required"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters long"
    if _CONTROL_CHARACTER.search(name):
        return "must not hold control characters"
    return None
