"""Every statement on ``idempotency_records``.

A record is found by its organization, principal and key; after that it is addressed by its id
and the claim's lock token, both of which only its claimant holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError

from keyhole.idempotency.models import IdempotencyRecord
from keyhole.store.base import utcnow
from keyhole.store.database import Database

# A record's states: claimed by a request still running, then its outcome fixed.
IN_PROGRESS = "in_progress"
COMPLETED = "completed"


def _changed(result: object) -> bool:
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


class IdempotencyRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def insert(self, row: IdempotencyRecord) -> bool:
        """False when the principal's key already has a record."""
        try:
            async with self._db.transaction() as session:
                session.add(row)
        except IntegrityError:
            return False
        return True

    async def find(self, organization_id: str, principal_id: str, key: str) -> IdempotencyRecord | None:
        async with self._db.session() as session:
            return (
                await session.execute(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.organization_id == organization_id,
                        IdempotencyRecord.principal_id == principal_id,
                        IdempotencyRecord.key == key,
                    )
                )
            ).scalar_one_or_none()

    async def complete(
        self,
        record_id: str,
        lock_token: str,
        *,
        status: int,
        headers: Sequence[tuple[str, str]],
        body: str,
    ) -> bool:
        """Fix the outcome of a record still claimed with ``lock_token``."""
        async with self._db.transaction() as session:
            completed = await session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == record_id,
                    IdempotencyRecord.state == IN_PROGRESS,
                    IdempotencyRecord.lock_token == lock_token,
                )
                .values(
                    state=COMPLETED,
                    status=status,
                    response_headers=[[name, value] for name, value in headers],
                    response_body=body,
                    lock_token=None,
                    locked_until=None,
                )
            )
        return _changed(completed)

    async def take_over(
        self, record_id: str, lock_token: str | None, *, token: str, locked_until: datetime
    ) -> bool:
        """Move a claim still held with ``lock_token`` (by a request that stopped) to ``token``."""
        async with self._db.transaction() as session:
            taken = await session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == record_id,
                    IdempotencyRecord.state == IN_PROGRESS,
                    IdempotencyRecord.lock_token == lock_token,
                )
                .values(lock_token=token, locked_until=locked_until)
            )
        return _changed(taken)

    async def delete_expired(self, record_id: str, now: datetime) -> None:
        await self._delete(record_id, IdempotencyRecord.expires_at <= now)

    async def delete_claimed(self, record_id: str, lock_token: str) -> None:
        await self._delete(
            record_id,
            (IdempotencyRecord.state == IN_PROGRESS) & (IdempotencyRecord.lock_token == lock_token),
        )

    async def purge_expired(self, *, batch: int) -> int:
        purged = 0
        while True:
            async with self._db.transaction() as session:
                ids = list(
                    (
                        await session.execute(
                            select(IdempotencyRecord.id)
                            .where(IdempotencyRecord.expires_at <= utcnow())
                            .limit(batch)
                        )
                    ).scalars()
                )
                if ids:
                    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
            purged += len(ids)
            if len(ids) < batch:
                return purged

    async def _delete(self, record_id: str, condition: ColumnElement[bool]) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id, condition)
            )
