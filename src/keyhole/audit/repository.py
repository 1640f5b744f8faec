"""Every statement on ``proxy_calls``: the bulk insert, the reads of one organization's
connection (its last day's counts, its calls newest first) and the organization's calls newest
first, filtered."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Dialect, Select, and_, bindparam, case, func, insert, or_, select

from keyhole.audit.cursor import Position
from keyhole.audit.hours import HourCount
from keyhole.audit.models import ProxyCall
from keyhole.audit.query import CallFilter
from keyhole.audit.records import COLUMNS, CallRecord
from keyhole.store.database import Database

_Columns = TypeVarTuple("_Columns")


def _scoped(statement: Select[*_Columns], organization_id: str, connection_id: str) -> Select[*_Columns]:
    return statement.where(
        ProxyCall.organization_id == organization_id, ProxyCall.connection_id == connection_id
    )


def _newest_first(statement: Select[*_Columns], limit: int, before: Position | None) -> Select[*_Columns]:
    """Keyset pagination: the ``limit`` newest rows older than ``before``, never an OFFSET."""
    statement = statement.order_by(ProxyCall.created_at.desc(), ProxyCall.id.desc()).limit(limit)
    if before is None:
        return statement
    created_at, call_id = before
    return statement.where(
        # The plain bound lets the (…, created_at) index seek to the position; the OR alone
        # would make the database scan every newer row first.
        ProxyCall.created_at <= created_at,
        or_(ProxyCall.created_at < created_at, ProxyCall.id < call_id),
    )


def _matching(filters: CallFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.connection_id is not None:
        conditions.append(
            or_(
                ProxyCall.connection_id == filters.connection_id,
                ProxyCall.parent_connection_id == filters.connection_id,
            )
        )
    if filters.outcome is not None:
        conditions.append(ProxyCall.outcome == filters.outcome)
    if filters.ok is not None:
        conditions.append(ProxyCall.outcome == "ok" if filters.ok else ProxyCall.outcome != "ok")
    if filters.status_class is not None:
        statuses = filters.status_class.statuses
        status = ProxyCall.upstream_status
        conditions.append(
            status.is_(None) if statuses is None else and_(status >= statuses.start, status < statuses.stop)
        )
    if filters.since is not None:
        conditions.append(ProxyCall.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(ProxyCall.created_at <= filters.until)
    return conditions


def organization_calls_statement(
    organization_id: str, filters: CallFilter, *, limit: int, before: Position | None
) -> Select[ProxyCall]:
    """One organization's calls matching ``filters``, newest first: a range of the
    (organization_id, created_at) index."""
    statement = select(ProxyCall).where(ProxyCall.organization_id == organization_id, *_matching(filters))
    return _newest_first(statement, limit, before)


def hourly_counts_statement(organization_id: str, since: datetime, *, sqlite: bool) -> Select[Any]:
    """One organization's calls since ``since`` counted per UTC hour and connection: all,
    answered 4xx/5xx upstream (and otherwise ok), and refused or failed (an outcome other than
    ok), so the last two never overlap. A range of the (organization_id, created_at) index,
    grouped by hour first so that SQLite's planner keeps to that index rather than skip-scanning
    the connection index. The hour is SQLite's text ``YYYY-MM-DD HH`` (``created_at`` is stored
    as UTC text) or PostgreSQL's UTC timestamp."""
    hour: ColumnElement[Any]
    if sqlite:
        hour = func.substr(ProxyCall.created_at, 1, 13)
    else:
        hour = func.date_trunc("hour", func.timezone("UTC", ProxyCall.created_at))
    status = ProxyCall.upstream_status
    return (
        select(
            hour,
            ProxyCall.connection_id,
            func.count(),
            func.sum(case((and_(ProxyCall.outcome == "ok", status >= 400), 1), else_=0)),
            func.sum(case((ProxyCall.outcome != "ok", 1), else_=0)),
        )
        .where(ProxyCall.organization_id == organization_id, ProxyCall.created_at >= since)
        .group_by(hour, ProxyCall.connection_id)
    )


def _utc_hour(hour: str | datetime) -> datetime:
    if isinstance(hour, str):
        return datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return hour.replace(tzinfo=UTC)


@functools.cache
def _insert_statement(dialect: Dialect) -> str:
    """The INSERT in the driver's own parameter style, its parameters in ``COLUMNS`` order."""
    compiled = insert(ProxyCall).values({name: bindparam(name) for name in COLUMNS}).compile(dialect=dialect)
    if compiled.positiontup != list(COLUMNS):
        raise RuntimeError(f"the {dialect.name} driver does not take positional parameters")
    # A spooled record may already be stored (its process died between the two steps).
    return f"{compiled} ON CONFLICT DO NOTHING"


class AuditRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def insert(self, records: Sequence[CallRecord]) -> None:
        """One transaction; a record already stored is skipped."""
        naive = self._db.is_sqlite
        # Positional rows straight to the driver's executemany: SQLAlchemy's per-row parameter
        # processing cost more than the insert itself.
        async with self._db.engine.begin() as connection:
            await connection.exec_driver_sql(
                _insert_statement(connection.dialect),
                [record.values(naive_timestamps=naive) for record in records],
            )

    async def counts(
        self, organization_id: str, connection_id: str, since: datetime
    ) -> tuple[int, int, int, int, datetime | None]:
        """Calls since ``since``: all, 2xx, 4xx and 5xx upstream answers, and the last one's time."""
        status = ProxyCall.upstream_status
        statement = select(
            func.count(),
            func.sum(case((and_(status >= 200, status < 300), 1), else_=0)),
            func.sum(case((and_(status >= 400, status < 500), 1), else_=0)),
            func.sum(case((status >= 500, 1), else_=0)),
            func.max(ProxyCall.created_at),
        )
        async with self._db.session() as session:
            row = (
                await session.execute(
                    _scoped(statement, organization_id, connection_id).where(ProxyCall.created_at >= since)
                )
            ).one()
        last = row[4]
        if isinstance(last, str):  # SQLite aggregates bypass the column type
            last = datetime.fromisoformat(last)
        return int(row[0]), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0), last

    async def newest_first(
        self, organization_id: str, connection_id: str, *, limit: int, before: Position | None
    ) -> list[ProxyCall]:
        """Up to ``limit`` calls, newest first; only those older than ``before`` (its time and id)
        when given."""
        statement = _newest_first(_scoped(select(ProxyCall), organization_id, connection_id), limit, before)
        async with self._db.session() as session:
            return list((await session.execute(statement)).scalars())

    async def organization_newest_first(
        self, organization_id: str, filters: CallFilter, *, limit: int, before: Position | None
    ) -> list[ProxyCall]:
        """Up to ``limit`` of the organization's calls matching ``filters``, newest first; only
        those older than ``before`` when given."""
        statement = organization_calls_statement(organization_id, filters, limit=limit, before=before)
        async with self._db.session() as session:
            return list((await session.execute(statement)).scalars())

    async def last_calls(self, organization_id: str, connection_ids: Sequence[str]) -> list[ProxyCall]:
        """The newest call through each of the organization's ``connection_ids`` that has one, in one
        statement: a seek of the (organization_id, connection_id, created_at) index per connection,
        never a scan of their calls (meant for a page of connections, not thousands)."""
        if not connection_ids:
            return []
        newest = [
            _scoped(select(ProxyCall.id), organization_id, connection_id)
            .order_by(ProxyCall.created_at.desc(), ProxyCall.id.desc())
            .limit(1)
            .correlate(None)
            .scalar_subquery()
            for connection_id in dict.fromkeys(connection_ids)
        ]
        async with self._db.session() as session:
            return list((await session.execute(select(ProxyCall).where(ProxyCall.id.in_(newest)))).scalars())

    async def hourly_counts(self, organization_id: str, since: datetime) -> list[HourCount]:
        """The organization's calls since ``since`` per connection and hour, in one statement."""
        statement = hourly_counts_statement(organization_id, since, sqlite=self._db.is_sqlite)
        async with self._db.session() as session:
            rows = (await session.execute(statement)).all()
        hours: dict[object, datetime] = {}  # a day has 24: each read once
        counts = []
        for hour, connection_id, calls, upstream_errors, failed in rows:
            start = hours.get(hour)
            if start is None:
                start = hours[hour] = _utc_hour(hour)
            counts.append(HourCount(connection_id, start, int(calls), int(upstream_errors), int(failed)))
        return counts

    async def get(self, organization_id: str, call_id: str) -> ProxyCall | None:
        """The organization's call ``call_id`` (``None`` for another organization's)."""
        statement = select(ProxyCall).where(
            ProxyCall.id == call_id, ProxyCall.organization_id == organization_id
        )
        async with self._db.session() as session:
            return (await session.execute(statement)).scalar_one_or_none()
