"""The typed audit record and the redaction of credential query values in logged paths."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from keyhole.vault.scrub import REDACTED

_CALL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_call_id(text: str) -> bool:
    """Whether ``text`` has the form of a call record's id (a UUID in lower case)."""
    return _CALL_ID.fullmatch(text) is not None


class CallRecord(NamedTuple):
    """One audited call. A named tuple: one is built per proxied call, and it is already the
    positional row the audit flush hands to the driver (``values``)."""

    id: str
    organization_id: str
    connection_id: str
    parent_connection_id: str | None  # the shared copy's parent, whose credential the call used
    principal_id: str
    dialect: str
    method: str
    path: str
    upstream_status: int | None
    latency_ms: int
    bytes_in: int
    bytes_out: int
    truncated: bool
    outcome: str  # "ok" or the error key
    error_message: str | None
    created_at: datetime  # last: ``values`` replaces it with the driver's form

    def values(self, *, naive_timestamps: bool) -> tuple[Any, ...]:
        """The row in ``COLUMNS`` order, as the database driver takes it.

        ``naive_timestamps`` writes ``created_at`` as SQLite stores timestamps (UTC text, the
        format SQLAlchemy's own SQLite DateTime type reads back), for drivers without a
        timestamp type."""
        created = self.created_at.astimezone(UTC)
        if naive_timestamps:
            return (*self[:-1], f"{created:%Y-%m-%d %H:%M:%S}.{created.microsecond:06d}")
        return (*self[:-1], created)


def redacted_path(path: str, encoded_query: str, credential_names: Collection[str]) -> str:
    """``path?query`` as sent, with each credential parameter's value replaced by ``[REDACTED]``.

    Every other pair is kept byte for byte, so the record shows the caller's own encoding.
    """
    if not encoded_query:
        return path
    if not credential_names:
        return f"{path}?{encoded_query}"
    locked = {name.lower() for name in credential_names}
    pairs = []
    for pair in encoded_query.split("&"):
        name = pair.partition("=")[0]
        pairs.append(f"{name}={REDACTED}" if unquote_plus(name).lower() in locked else pair)
    return f"{path}?{'&'.join(pairs)}"


COLUMNS = CallRecord._fields
