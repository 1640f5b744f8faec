"""The process registry: every server and worker announces itself and keeps its row fresh.

`keyhole doctor` reads it to tell whether workers run for every queue and whether a process's
clock has drifted from the database's. A process that stops cleanly removes its row; one that
dies leaves a row that stops being refreshed and is purged after a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole import __version__
from keyhole.deployment.models import ProcessRecord
from keyhole.store.base import UTCDateTime, utcnow
from keyhole.store.database import Database

logger = logging.getLogger(__name__)

_FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ProcessView:
    id: str
    role: str
    host: str
    pid: int
    version: str
    queues: list[str]
    started_at: datetime
    clock_skew_seconds: float  # the process's clock minus the database's, at its last heartbeat


class ProcessRegistry:
    def __init__(self, database: Database, process_id: str, *, heartbeat_seconds: float) -> None:
        self._db = database
        self._interval = heartbeat_seconds
        self.id = process_id  # the id job rows name their worker by, too
        self._task: asyncio.Task[None] | None = None
        self._announced = False

    def start(self, role: str, queues: Sequence[str]) -> None:
        """Announce this process and refresh its row every heartbeat; call in the event loop."""
        self._task = asyncio.create_task(self._beat(role, list(queues)), name="process-heartbeat")

    async def close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._announced:
            try:
                async with self._db.transaction() as session:
                    await session.execute(delete(ProcessRecord).where(ProcessRecord.id == self.id))
            except Exception:  # the store may be gone at shutdown; the row then ages out
                logger.warning("could not remove this process's registry row", exc_info=True)

    async def _beat(self, role: str, queues: list[str]) -> None:
        while True:
            try:
                await self._refresh(role, queues)
            except Exception:  # a store outage must not end the heartbeat for good
                logger.warning("process heartbeat failed; retrying", exc_info=True)
            await asyncio.sleep(self._interval)

    async def _refresh(self, role: str, queues: list[str]) -> None:
        async with self._db.transaction() as session:
            now = utcnow()
            if self._announced:
                await session.execute(
                    update(ProcessRecord)
                    .where(ProcessRecord.id == self.id)
                    .values(reported_at=now, seen_at=func.now())
                )
                return
            session.add(
                ProcessRecord(
                    id=self.id,
                    role=role,
                    host=socket.gethostname()[:255],
                    pid=os.getpid(),
                    version=__version__,
                    queues=queues,
                    started_at=now,
                    reported_at=now,
                )
            )
        self._announced = True

    async def purge_stale(self) -> int:
        """Forget processes not seen for a day (they died without removing their row)."""
        async with self._db.transaction() as session:
            cutoff = await _database_now(session) - _FORGET_AFTER
            result = await session.execute(delete(ProcessRecord).where(ProcessRecord.seen_at < cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def recent_processes(database: Database, within_seconds: float) -> list[ProcessView]:
    """Processes whose last heartbeat is at most ``within_seconds`` old (database clock)."""
    async with database.session() as session:
        database_now = await _database_now(session)
        rows = (
            await session.execute(
                select(ProcessRecord)
                .where(ProcessRecord.seen_at >= database_now - timedelta(seconds=within_seconds))
                .order_by(ProcessRecord.role, ProcessRecord.started_at)
            )
        ).scalars()
        return [
            ProcessView(
                id=row.id,
                role=row.role,
                host=row.host,
                pid=row.pid,
                version=row.version,
                queues=list(row.queues or []),
                started_at=row.started_at,
                clock_skew_seconds=(row.reported_at - row.seen_at).total_seconds(),
            )
            for row in rows
        ]


async def database_clock_skew(database: Database) -> float:
    """This process's clock minus the database's, in seconds."""
    async with database.session() as session:
        before = utcnow()
        database_now = await _database_now(session)
        after = utcnow()
    return ((before + (after - before) / 2) - database_now).total_seconds()


async def _database_now(session: AsyncSession) -> datetime:
    # type_coerce, not CAST: SQLite would turn CAST(CURRENT_TIMESTAMP AS DATETIME) into a number.
    value = (await session.execute(select(type_coerce(func.now(), UTCDateTime())))).scalar_one()
    assert isinstance(value, datetime)
    return value
