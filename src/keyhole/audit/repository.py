"""Every statement on ``proxy_calls``: the bulk insert, and the reads of one organization's
connection (its last day's counts, its calls newest first)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import Dialect, Select, and_, bindparam, case, func, insert, or_, select

from keyhole.audit.models import ProxyCall
from keyhole.audit.records import COLUMNS, CallRecord
from keyhole.store.database import Database

_Columns = TypeVarTuple("_Columns")


def _scoped(statement: Select[*_Columns], organization_id: str, connection_id: str) -> Select[*_Columns]:
    return statement.where(
        ProxyCall.organization_id == organization_id, ProxyCall.connection_id == connection_id
    )


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
        self, organization_id: str, connection_id: str, *, limit: int, before: tuple[datetime, str] | None
    ) -> list[ProxyCall]:
        """Up to ``limit`` calls, newest first; only those older than ``before`` (its time and id)
        when given."""
        statement = (
            _scoped(select(ProxyCall), organization_id, connection_id)
            .order_by(ProxyCall.created_at.desc(), ProxyCall.id.desc())
            .limit(limit)
        )
        if before is not None:
            created_at, call_id = before
            statement = statement.where(
                or_(
                    ProxyCall.created_at < created_at,
                    and_(ProxyCall.created_at == created_at, ProxyCall.id < call_id),
                )
            )
        async with self._db.session() as session:
            return list((await session.execute(statement)).scalars())
