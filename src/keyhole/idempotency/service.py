"""Idempotency-Key semantics (Polytomic spec 1.6), for any dialect.

* A key is 8 to 255 characters from ``[A-Za-z0-9_-]`` and is scoped to the principal that sent
  it (a user, or the organization key): another principal's key of the same name is another key,
  so nobody is ever answered with an outcome fixed for someone else.
* The first request with a key fixes the outcome (status, headers, body; errors included)
  for ``KEYHOLE_IDEMPOTENCY_TTL_SECONDS``; later requests get that outcome back untouched.
* A request that arrives while the first is still running gets 409; the same key with a
  different request (method, path, query or body) gets 422.
* An in-progress marker expires after ``KEYHOLE_IDEMPOTENCY_LOCK_SECONDS``, so a request whose
  process died never blocks its key for good.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError

from keyhole.errors import Conflict, InvalidRequest, Unprocessable
from keyhole.idempotency.models import IdempotencyRecord
from keyhole.store.base import new_id, utcnow
from keyhole.store.database import Database
from keyhole.vault import Vault
from keyhole.vault.rotation import row_aad

_KEY = re.compile(r"^[A-Za-z0-9_-]{8,255}$")
IN_PROGRESS = "in_progress"
COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """This request owns the key: run it, then ``complete`` (or ``abandon``) the claim."""

    record_id: str
    lock_token: str


@dataclass(frozen=True, slots=True)
class Replay:
    response: StoredResponse


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidRequest(
            "the Idempotency-Key header must be 8 to 255 characters of letters, digits, '-' and '_'",
            key="invalid_idempotency_key",
            metadata={"header": "Idempotency-Key"},
        )
    return key


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests "the same request" for one key."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode()):
        digest.update(len(part).to_bytes(8, "big") + part)
    digest.update(body)
    return digest.hexdigest()


def _aad(record_id: str) -> str:
    return row_aad(IdempotencyRecord.__tablename__, record_id, "response_body")


def _changed(result: object) -> bool:
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


class IdempotencyService:
    def __init__(self, database: Database, vault: Vault, *, ttl_seconds: int, lock_seconds: float) -> None:
        self._db = database
        self._vault = vault
        self._ttl = timedelta(seconds=ttl_seconds)
        self._lock = timedelta(seconds=lock_seconds)

    async def begin(
        self, organization_id: str, principal_id: str, key: str, request_fingerprint: str
    ) -> Claim | Replay:
        """Claim the principal's ``key`` for this request, or return the outcome already fixed for it."""
        check_key(key)
        for _ in range(5):
            claim = await self._insert(organization_id, principal_id, key, request_fingerprint)
            if claim is not None:
                return claim
            async with self._db.session() as session:
                row = (
                    await session.execute(
                        select(IdempotencyRecord).where(
                            IdempotencyRecord.organization_id == organization_id,
                            IdempotencyRecord.principal_id == principal_id,
                            IdempotencyRecord.key == key,
                        )
                    )
                ).scalar_one_or_none()
            if row is None:
                continue  # expired and purged in between: insert again
            now = utcnow()
            if row.expires_at <= now:
                await self._delete(row.id, (IdempotencyRecord.expires_at <= now))
                continue
            if row.fingerprint != request_fingerprint:
                raise Unprocessable(
                    "this Idempotency-Key was already used for a different request (method, path, query "
                    "or body differ); use a new key for a new request",
                    key="idempotency_key_reused",
                    metadata={"header": "Idempotency-Key"},
                )
            if row.state == COMPLETED and row.status is not None:
                return Replay(self._stored(row))
            if row.locked_until is not None and row.locked_until > now:
                raise Conflict(
                    "a request with this Idempotency-Key is still in progress; retry once it has finished",
                    key="idempotency_key_in_progress",
                    retry_after=1,
                    metadata={"header": "Idempotency-Key"},
                )
            taken = await self._take_over(row)  # the first request's process died mid-way
            if taken is not None:
                return taken
        raise Conflict(
            "this Idempotency-Key is contended; retry", key="idempotency_key_in_progress", retry_after=1
        )

    async def complete(self, claim: Claim, response: StoredResponse) -> bool:
        """Fix the outcome. False when the claim had expired and another request took the key."""
        body = self._vault.encrypt(response.body, _aad(claim.record_id))
        async with self._db.transaction() as session:
            completed = await session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == claim.record_id,
                    IdempotencyRecord.state == IN_PROGRESS,
                    IdempotencyRecord.lock_token == claim.lock_token,
                )
                .values(
                    state=COMPLETED,
                    status=response.status,
                    response_headers=[[name, value] for name, value in response.headers],
                    response_body=body,
                    lock_token=None,
                    locked_until=None,
                )
            )
        return _changed(completed)

    async def abandon(self, claim: Claim) -> None:
        """Release the key without fixing an outcome (nothing was produced to replay)."""
        await self._delete(
            claim.record_id,
            (IdempotencyRecord.state == IN_PROGRESS) & (IdempotencyRecord.lock_token == claim.lock_token),
        )

    async def purge_expired(self, *, batch: int = 1000) -> int:
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

    # -- internals -----------------------------------------------------------------------------

    async def _insert(
        self, organization_id: str, principal_id: str, key: str, request_fingerprint: str
    ) -> Claim | None:
        now = utcnow()
        record_id, token = new_id(), new_id()
        try:
            async with self._db.transaction() as session:
                session.add(
                    IdempotencyRecord(
                        id=record_id,
                        organization_id=organization_id,
                        principal_id=principal_id,
                        key=key,
                        fingerprint=request_fingerprint,
                        state=IN_PROGRESS,
                        lock_token=token,
                        locked_until=now + self._lock,
                        created_at=now,
                        expires_at=now + self._ttl,
                    )
                )
        except IntegrityError:
            return None
        return Claim(record_id, token)

    async def _take_over(self, row: IdempotencyRecord) -> Claim | None:
        token = new_id()
        now = utcnow()
        async with self._db.transaction() as session:
            taken = await session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == row.id,
                    IdempotencyRecord.state == IN_PROGRESS,
                    IdempotencyRecord.lock_token == row.lock_token,
                )
                .values(lock_token=token, locked_until=now + self._lock)
            )
        return Claim(row.id, token) if _changed(taken) else None

    async def _delete(self, record_id: str, condition: ColumnElement[bool]) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id, condition)
            )

    def _stored(self, row: IdempotencyRecord) -> StoredResponse:
        assert row.status is not None and row.response_body is not None
        body = self._vault.decrypt(row.response_body, _aad(row.id))
        headers = [(str(name), str(value)) for name, value in (row.response_headers or [])]
        return StoredResponse(row.status, headers, body)
