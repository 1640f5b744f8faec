"""The keyset cursor of call listings: the last listed record's time and id, base64url-encoded.

A cursor is a position, not a capability: every listing is scoped to the caller's organization
(and connection) whatever the cursor says, so a forged one can only move within what the caller
may read anyway. Decoding is strict so that whatever a caller sends is a 400, never a failure
further down (a NUL in a PostgreSQL parameter, a time outside the representable range).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from keyhole.audit.records import is_call_id
from keyhole.errors import InvalidRequest

MAX_CURSOR_LENGTH = 128  # an issued cursor is about 90 characters

Position = tuple[datetime, str]
"""A record's ``created_at`` (UTC) and id: listings continue with the records older than it."""


def encode_cursor(created_at: datetime, record_id: str) -> str:
    raw = f"{created_at.isoformat()}|{record_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position ``cursor`` names, or 400 ``invalid_cursor`` for anything this server would
    not have issued."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise _invalid()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode("ascii")
        if not raw.isprintable():  # fromisoformat() would stop reading at a NUL
            raise ValueError
        stamp, record_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(stamp)
        utc = created_at.astimezone(UTC) if created_at.tzinfo is not None else None
    except (ValueError, binascii.Error, OverflowError):
        raise _invalid() from None
    if utc is None or not is_call_id(record_id):
        raise _invalid()
    return utc, record_id


def _invalid() -> InvalidRequest:
    message = "cursor is not one this server issued; follow links.next as returned"
    return InvalidRequest(
        message, key="invalid_cursor", metadata={"errors": [{"field": "cursor", "message": message}]}
    )
