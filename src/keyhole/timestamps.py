"""Moments as every answer and message shows them: ISO 8601 in UTC, with ``Z``."""

from __future__ import annotations

from datetime import datetime
from typing import overload


@overload
def timestamp(value: datetime) -> str: ...
@overload
def timestamp(value: None) -> None: ...
def timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
