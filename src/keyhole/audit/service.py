"""Audit writes, and the queries behind proxy info stats and the call listings (one
connection's, the organization's).

A call's record goes to the process's local spool (one ``write``) before the call answers and
to the store in one bulk insert every flush interval, so the request path never waits on the
database and a process killed right after answering, even with SIGKILL, loses no record: the
next process on the same home stores what its spool holds (``audit/spool.py``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from keyhole.audit.cursor import decode_cursor, encode_cursor
from keyhole.audit.hours import HourlyCounts, LastDay
from keyhole.audit.models import ProxyCall
from keyhole.audit.query import CallFilter
from keyhole.audit.records import CallRecord, is_call_id
from keyhole.audit.repository import AuditRepository
from keyhole.audit.spool import AuditSpool
from keyhole.store.base import utcnow
from keyhole.store.database import Database

logger = logging.getLogger(__name__)

MAX_BUFFER = 50_000
FLUSH_CHUNK = 500


@dataclass(frozen=True, slots=True)
class CallStats:
    calls: int
    ok_2xx: int
    client_4xx: int
    server_5xx: int
    last_call_at: datetime | None


@dataclass(frozen=True, slots=True)
class CallPage:
    calls: list[CallRecord]
    next_cursor: str | None


class AuditLog:
    def __init__(
        self, database: Database, *, flush_seconds: float = 1.0, spool: AuditSpool | None = None
    ) -> None:
        self._rows = AuditRepository(database)
        self._flush_seconds = flush_seconds
        self._spool = spool
        self._pending: list[CallRecord] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0
        # An hour's records are all stored a few flushes after it ends (unless the store was down).
        settle = timedelta(seconds=60 + 4 * flush_seconds)
        self._hours = HourlyCounts(self._rows.hourly_counts, settle=settle)

    def record(self, record: CallRecord) -> None:
        if len(self._pending) >= MAX_BUFFER:
            self.dropped += 1  # the store is down or far behind; bound memory rather than grow
            return
        if self._spool is not None:
            self._spool.append(record)
        self._pending.append(record)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.flush()
        if self._spool is not None:
            self._spool.close()

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            if self._spool is not None:
                self._spool.rotate()
            batch, self._pending = self._pending, []
            if await self._write(batch) and self._spool is not None:
                self._spool.stored()

    async def recover(self) -> int:
        """Store what dead processes left in the spool; returns how many records."""
        if self._spool is None:
            return 0
        recovered = 0
        async with self._lock:
            for records in self._spool.orphans():
                if not await self._write(records, requeue=False):
                    break  # the store is down: the segment stays for the next attempt
                recovered += len(records)
        if recovered:
            logger.warning("stored %d audit records a stopped process left in its spool", recovered)
        return recovered

    async def _write(self, batch: list[CallRecord], *, requeue: bool = True) -> bool:
        for start in range(0, len(batch), FLUSH_CHUNK):
            try:
                # In bounded chunks: one huge statement would hold the event loop for tens of ms.
                await self._rows.insert(batch[start : start + FLUSH_CHUNK])
            except Exception:
                rest = batch[start:]
                logger.exception("audit write failed; %d records kept for the next attempt", len(rest))
                if requeue:
                    self._pending[:0] = rest[: MAX_BUFFER - len(self._pending)]
                return False
            await asyncio.sleep(0)
        return True

    async def _run(self) -> None:
        await self.recover()
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()
            await self.recover()

    async def stats(self, organization_id: str, connection_id: str) -> CallStats:
        await self.flush()
        since = utcnow() - timedelta(hours=24)
        return CallStats(*await self._rows.counts(organization_id, connection_id, since))

    async def calls(
        self, organization_id: str, connection_id: str, *, limit: int, cursor: str | None
    ) -> CallPage:
        before = decode_cursor(cursor) if cursor else None
        await self.flush()
        rows = await self._rows.newest_first(
            organization_id,
            connection_id,
            limit=limit + 1,  # one more tells whether there is a next page
            before=before,
        )
        return _page(rows, limit)

    async def organization_calls(
        self, organization_id: str, filters: CallFilter, *, limit: int, cursor: str | None
    ) -> CallPage:
        """The organization's calls matching ``filters``, newest first, ``limit`` a page."""
        before = decode_cursor(cursor) if cursor else None
        await self.flush()
        rows = await self._rows.organization_newest_first(
            organization_id, filters, limit=limit + 1, before=before
        )
        return _page(rows, limit)

    async def last_calls(self, organization_id: str, connection_ids: list[str]) -> dict[str, CallRecord]:
        """The newest call through each of the organization's connections that has one, by
        connection id (one statement for a page of connections)."""
        await self.flush()
        rows = await self._rows.last_calls(organization_id, connection_ids)
        return {row.connection_id: _record(row) for row in rows}

    async def call(self, organization_id: str, call_id: str) -> CallRecord | None:
        """One of the organization's calls; ``None`` for another's, or for anything that is not a
        call id."""
        if not is_call_id(call_id):
            return None
        await self.flush()
        row = await self._rows.get(organization_id, call_id)
        return None if row is None else _record(row)

    async def last_day(self, organization_id: str) -> LastDay:
        """The organization's calls per connection and hour over the last 24 hours."""
        await self.flush()
        return await self._hours.last_day(organization_id, utcnow())


def _page(rows: list[ProxyCall], limit: int) -> CallPage:
    """``rows`` holds up to one more than a page: that one says there is a next page."""
    page = [_record(row) for row in rows[:limit]]
    last = page[-1] if len(rows) > limit and page else None
    return CallPage(page, None if last is None else encode_cursor(last.created_at, last.id))


def _record(row: ProxyCall) -> CallRecord:
    return CallRecord(
        id=row.id,
        organization_id=row.organization_id,
        connection_id=row.connection_id,
        parent_connection_id=row.parent_connection_id,
        principal_id=row.principal_id,
        dialect=row.dialect,
        method=row.method,
        path=row.path,
        upstream_status=row.upstream_status,
        latency_ms=row.latency_ms,
        bytes_in=row.bytes_in,
        bytes_out=row.bytes_out,
        truncated=row.truncated,
        outcome=row.outcome,
        error_message=row.error_message,
        created_at=row.created_at,
    )
