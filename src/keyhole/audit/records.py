"""The typed audit record and the redaction of credential query values in logged paths."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

REDACTED = "[REDACTED]"


@dataclass(frozen=True, slots=True)
class CallRecord:
    id: str
    organization_id: str
    connection_id: str
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
    created_at: datetime

    def values(self, *, naive_timestamps: bool) -> tuple[Any, ...]:
        """The row in ``COLUMNS`` order, as the database driver takes it.

        ``naive_timestamps`` writes ``created_at`` as SQLite stores timestamps (UTC text, the
        format SQLAlchemy's own SQLite DateTime type reads back), for drivers without a
        timestamp type."""
        created = self.created_at.astimezone(UTC)
        stamp: Any = created
        if naive_timestamps:
            stamp = f"{created:%Y-%m-%d %H:%M:%S}.{created.microsecond:06d}"
        return (
            self.id,
            self.organization_id,
            self.connection_id,
            self.principal_id,
            self.dialect,
            self.method,
            self.path,
            self.upstream_status,
            self.latency_ms,
            self.bytes_in,
            self.bytes_out,
            self.truncated,
            self.outcome,
            self.error_message,
            stamp,
        )


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


COLUMNS = tuple(field.name for field in fields(CallRecord))
