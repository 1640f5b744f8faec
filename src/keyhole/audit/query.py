"""What an organization-wide call listing selects: the filters, typed, and their rules.

Every filter narrows the listing (they combine with AND); a value that matches nothing (an
unknown connection or outcome) is an empty listing, not an error: a filter discloses nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from keyhole.errors import InvalidRequest

OUTCOME_PATTERN = re.compile(r"[a-z0-9_]{1,64}")  # "ok" or an error key, as the column holds it


class StatusClass(StrEnum):
    """The upstream's answer: ``2xx`` to ``5xx``, or ``none`` for a call refused or failed before
    any upstream answered (locked header, egress denied, timeout)."""

    SUCCESS = "2xx"
    REDIRECTION = "3xx"
    CLIENT_ERROR = "4xx"
    SERVER_ERROR = "5xx"
    NONE = "none"

    @property
    def statuses(self) -> range | None:
        """The upstream statuses of the class; ``None`` for ``none``."""
        if self is StatusClass.NONE:
            return None
        first = int(self.value[0]) * 100
        return range(first, first + 100)


@dataclass(frozen=True, slots=True)
class CallFilter:
    """``connection_id`` matches calls through that connection and calls through its shared
    copies (whose parent it is); ``ok`` keeps only calls whose outcome is (``True``) or is not
    (``False``) ``ok``; ``since`` and ``until`` are inclusive."""

    connection_id: str | None = None
    outcome: str | None = None
    ok: bool | None = None
    status_class: StatusClass | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and not OUTCOME_PATTERN.fullmatch(self.outcome):
            raise invalid_parameter(
                "outcome", "must be ok or an error key: 1 to 64 lowercase letters, digits and underscores"
            )
        for name, moment in (("since", self.since), ("until", self.until)):
            if moment is None:
                continue
            if moment.tzinfo is None:
                raise invalid_parameter(name, "must include a UTC offset (Z or +HH:MM)")
            try:
                moment.astimezone(UTC)  # as the store compares it
            except OverflowError:
                raise invalid_parameter(name, "is outside the years 1 to 9999 in UTC") from None
        if self.since is not None and self.until is not None and self.since > self.until:
            raise invalid_parameter("since", "must not be later than until")


def invalid_parameter(name: str, message: str) -> InvalidRequest:
    """400 ``validation_error`` naming the query parameter, as every listing parameter reports it."""
    return InvalidRequest(
        f"query parameter {name} {message}",
        key="validation_error",
        metadata={"errors": [{"field": name, "message": message}]},
    )
