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

from keyhole.errors import Conflict, InvalidRequest, Unprocessable
from keyhole.idempotency.models import IdempotencyRecord
from keyhole.idempotency.repository import COMPLETED, IN_PROGRESS, IdempotencyRepository
from keyhole.store.base import new_id, utcnow
from keyhole.store.database import Database
from keyhole.vault import Vault
from keyhole.vault.rotation import row_aad

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,255}$")


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
    if not KEY_PATTERN.match(key):
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


class IdempotencyService:
    def __init__(self, database: Database, vault: Vault, *, ttl_seconds: int, lock_seconds: float) -> None:
        self._rows = IdempotencyRepository(database)
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
            row = await self._rows.find(organization_id, principal_id, key)
            if row is None:
                continue  # expired and purged in between: insert again
            now = utcnow()
            if row.expires_at <= now:
                await self._rows.delete_expired(row.id, now)
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
        return await self._rows.complete(
            claim.record_id, claim.lock_token, status=response.status, headers=response.headers, body=body
        )

    async def abandon(self, claim: Claim) -> None:
        """Release the key without fixing an outcome (nothing was produced to replay)."""
        await self._rows.delete_claimed(claim.record_id, claim.lock_token)

    async def purge_expired(self, *, batch: int = 1000) -> int:
        return await self._rows.purge_expired(batch=batch)

    # -- internals -----------------------------------------------------------------------------

    async def _insert(
        self, organization_id: str, principal_id: str, key: str, request_fingerprint: str
    ) -> Claim | None:
        now = utcnow()
        record_id, token = new_id(), new_id()
        row = IdempotencyRecord(
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
        return Claim(record_id, token) if await self._rows.insert(row) else None

    async def _take_over(self, row: IdempotencyRecord) -> Claim | None:
        token = new_id()
        now = utcnow()
        taken = await self._rows.take_over(row.id, row.lock_token, token=token, locked_until=now + self._lock)
        return Claim(row.id, token) if taken else None

    def _stored(self, row: IdempotencyRecord) -> StoredResponse:
        assert row.status is not None and row.response_body is not None
        body = self._vault.decrypt(row.response_body, _aad(row.id))
        headers = [(str(name), str(value)) for name, value in (row.response_headers or [])]
        return StoredResponse(row.status, headers, body)
