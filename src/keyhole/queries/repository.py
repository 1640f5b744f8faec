"""Every statement on ``queries``. Each state change is a compare-and-swap on the row's status
(and attempt), so that a stale worker, a cancel and the expiry purge never overwrite each other.

A caller's query is read only through :meth:`QueryRepository.get_owned` and listed only through
:meth:`QueryRepository.list_owned` (its organization and owner); the worker, the sweep and the
purge address rows by id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from keyhole.queries.models import Query
from keyhole.store.base import utcnow
from keyhole.store.database import Database

UNFINISHED = ("created", "running")
TERMINAL = ("done", "failed")


def _changed(result: Any) -> bool:
    return getattr(result, "rowcount", 0) == 1


class QueryRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    # -- reads ---------------------------------------------------------------------------------

    async def get(self, query_id: str) -> Query | None:
        async with self._db.session() as session:
            return await session.get(Query, query_id)

    async def get_owned(self, organization_id: str, owner_id: str, query_id: str) -> Query | None:
        row = await self.get(query_id)
        if row is None or row.organization_id != organization_id or row.owner_id != owner_id:
            return None
        return row

    async def list_owned(
        self, organization_id: str, owner_id: str, *, now: datetime, limit: int, unfinished_only: bool
    ) -> list[Query]:
        """The owner's queries not yet expired at ``now``, newest first."""
        statement = select(Query).where(
            Query.organization_id == organization_id,
            Query.owner_id == owner_id,
            Query.expires_at > now,
            Query.purged_at.is_(None),
        )
        if unfinished_only:
            statement = statement.where(Query.status.in_(UNFINISHED))
        async with self._db.session() as session:
            return list(
                (
                    await session.execute(
                        statement.order_by(Query.created_at.desc(), Query.id.desc()).limit(limit)
                    )
                ).scalars()
            )

    async def created_before(self, cutoff: datetime) -> list[tuple[str, str | None]]:
        """Queries still ``created`` that were submitted before ``cutoff``, with their job ids."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Query.id, Query.job_id).where(Query.status == "created", Query.created_at < cutoff)
                )
            ).all()
        return [(query_id, job_id) for query_id, job_id in rows]

    # -- writes --------------------------------------------------------------------------------

    async def add(self, row: Query) -> None:
        async with self._db.transaction() as session:
            session.add(row)

    async def delete(self, query_id: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(delete(Query).where(Query.id == query_id))

    async def request_cancel(self, query_id: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                update(Query)
                .where(Query.id == query_id, Query.status.in_(UNFINISHED))
                .values(cancel_requested=True)
            )

    async def claim(self, query_id: str, *, attempt: int) -> bool:
        """``created``/``running`` at attempt ``attempt - 1`` and not cancelled → ``running`` at
        ``attempt`` with its counters reset."""
        async with self._db.transaction() as session:
            claimed = await session.execute(
                update(Query)
                .where(
                    Query.id == query_id,
                    Query.attempt == attempt - 1,
                    Query.status.in_(UNFINISHED),
                    Query.cancel_requested.is_(False),
                )
                .values(
                    status="running",
                    attempt=attempt,
                    started_at=utcnow(),
                    row_count=0,
                    byte_count=0,
                    page_count=0,
                    column_batches=0,
                    truncated=False,
                )
            )
        return _changed(claimed)

    async def record_progress(self, query_id: str, *, attempt: int, row_count: int, byte_count: int) -> None:
        """The rows and bytes stored so far by the running ``attempt``."""
        async with self._db.transaction() as session:
            await session.execute(
                update(Query)
                .where(Query.id == query_id, Query.status == "running", Query.attempt == attempt)
                .values(row_count=row_count, byte_count=byte_count)
            )

    async def finish_done(
        self,
        query_id: str,
        *,
        attempt: int,
        fields: list[str],
        field_kinds: list[str],
        row_count: int,
        byte_count: int,
        page_count: int,
        column_batches: int,
        truncated: bool,
        read_only: bool,
    ) -> bool:
        """``running`` at ``attempt`` → ``done``."""
        async with self._db.transaction() as session:
            finished = await session.execute(
                update(Query)
                .where(Query.id == query_id, Query.status == "running", Query.attempt == attempt)
                .values(
                    status="done",
                    fields=fields,
                    field_kinds=field_kinds,
                    row_count=row_count,
                    byte_count=byte_count,
                    page_count=page_count,
                    column_batches=column_batches,
                    truncated=truncated,
                    read_only=read_only,
                    finished_at=utcnow(),
                )
            )
        return _changed(finished)

    async def finish_failed(
        self,
        query_id: str,
        message: str,
        key: str,
        *,
        attempt: int | None = None,
        only_status: str | None = None,
    ) -> bool:
        """``created``/``running`` (or only ``only_status``; at ``attempt`` when given) → ``failed``."""
        condition = Query.status.in_((only_status,) if only_status else UNFINISHED)
        async with self._db.transaction() as session:
            statement = update(Query).where(Query.id == query_id, condition)
            if attempt is not None:
                statement = statement.where(Query.attempt == attempt)
            failed = await session.execute(
                statement.values(status="failed", error=message, error_key=key, finished_at=utcnow())
            )
        return _changed(failed)

    # -- expiry --------------------------------------------------------------------------------

    async def expire(self, now: datetime) -> list[str]:
        """Ask every unfinished query expired at ``now`` to cancel; the ids of those that never
        started."""
        async with self._db.transaction() as session:
            await session.execute(
                update(Query)
                .where(Query.expires_at <= now, Query.status.in_(UNFINISHED))
                .values(cancel_requested=True)
            )
            return list(
                (
                    await session.execute(
                        select(Query.id).where(Query.expires_at <= now, Query.status == "created")
                    )
                ).scalars()
            )

    async def expired_unpurged(self, now: datetime, *, limit: int) -> list[Query]:
        """Finished queries expired at ``now`` whose pages are still stored."""
        async with self._db.session() as session:
            return list(
                (
                    await session.execute(
                        select(Query)
                        .where(
                            Query.expires_at <= now,
                            Query.purged_at.is_(None),
                            Query.status.in_(TERMINAL),
                        )
                        .limit(limit)
                    )
                ).scalars()
            )

    async def mark_purged(self, query_id: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(update(Query).where(Query.id == query_id).values(purged_at=utcnow()))

    async def forget(self, expired_before: datetime) -> None:
        """Delete the purged rows of queries that expired before ``expired_before``."""
        async with self._db.transaction() as session:
            await session.execute(
                delete(Query).where(
                    Query.expires_at <= expired_before,
                    Query.status.in_(TERMINAL),
                    Query.purged_at.is_not(None),
                )
            )
