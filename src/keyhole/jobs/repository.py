"""Every state change of a job row, each one a compare-and-swap so that two processes can
never both own, finish or retry the same attempt.

    created ──claim──► running ──finish──► done | failed
       ▲                  │
       └──── release / sweep (lease expired, attempts left) ───┘
                          └──── sweep (no attempts left) ──► failed
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.jobs.dispatch import Dispatcher, NoDispatch
from keyhole.jobs.models import Job
from keyhole.jobs.records import JobFailure, JobStatus, JobView, ListedJob, RunningJob
from keyhole.store.base import new_id
from keyhole.store.database import Database
from keyhole.vault import Vault, VaultError
from keyhole.vault.rotation import row_aad

MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class Abandoned:
    """A job the sweep failed because its worker stopped responding on the last attempt."""

    job: RunningJob
    view: JobView
    failure: JobFailure


@dataclass(frozen=True, slots=True)
class Swept:
    """What one sweep did: attempts given back for a retry (``RunningJob.attempt`` is the one
    that lost its lease) and jobs failed on their last attempt."""

    retried: list[RunningJob]
    abandoned: list[Abandoned]


def _payload_aad(job_id: str) -> str:
    return row_aad(Job.__tablename__, job_id, "payload")


def view_of(row: Job) -> JobView:
    return JobView(
        id=row.id,
        organization_id=row.organization_id,
        owner_id=row.owner_id,
        type=row.type,
        status=JobStatus(row.status),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        error=row.error,
        result=row.result,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        finished_at=row.finished_at,
    )


def _changed(result: Any) -> bool:
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


class JobRepository:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        *,
        lease_seconds: float,
        max_attempts: int,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self._vault = vault
        self._clock = clock
        self._lease = timedelta(seconds=lease_seconds)
        self._max_attempts = max_attempts
        self._ttl = timedelta(seconds=ttl_seconds)
        self.dispatcher: Dispatcher = NoDispatch()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- submitting and reading ----------------------------------------------------------------

    async def insert(
        self,
        *,
        organization_id: str,
        owner_id: str,
        job_type: str,
        payload: dict[str, Any],
        job_id: str | None = None,
    ) -> JobView:
        """Create a job (under ``job_id`` when the caller chose it) and hand it to the engine in
        the same transaction."""
        job_id = job_id or new_id()
        now = self._now()
        row = Job(
            id=job_id,
            organization_id=organization_id,
            owner_id=owner_id,
            type=job_type,
            status=JobStatus.CREATED.value,
            attempts=0,
            max_attempts=self._max_attempts,
            payload=self._vault.encrypt_json(payload, _payload_aad(job_id)),
            created_at=now,
            updated_at=now,
            expires_at=now + self._ttl,
        )
        async with self.database.transaction() as session:
            session.add(row)
            await session.flush()
            await self.dispatcher.enqueue(session, [(job_id, job_type)])
        self.dispatcher.notify()
        return view_of(row)

    async def get(self, organization_id: str, job_id: str) -> JobView | None:
        async with self.database.session() as session:
            row = await session.get(Job, job_id)
        if row is None or row.organization_id != organization_id or row.expires_at <= self._now():
            return None
        return view_of(row)

    async def list_owned(
        self,
        organization_id: str,
        owner_id: str,
        job_type: str,
        *,
        limit: int,
        before: str | None = None,
        after: str | None = None,
    ) -> list[ListedJob] | None:
        """Up to ``limit`` of the owner's unexpired jobs of ``job_type``, newest first: the newest
        of all, those older than job ``before``, or those just newer than job ``after``. None when
        the cursor job is not one of them."""
        owned = (
            (Job.organization_id == organization_id)
            & (Job.owner_id == owner_id)
            & (Job.type == job_type)
            & (Job.expires_at > self._now())
        )
        statement = select(Job).where(owned)
        async with self.database.session() as session:
            cursor_id = before or after
            if cursor_id is not None:
                cursor = (
                    await session.execute(select(Job.created_at, Job.id).where(owned, Job.id == cursor_id))
                ).one_or_none()
                if cursor is None:
                    return None
                created_at, job_id = cursor
                if after is not None:
                    beyond = (Job.created_at > created_at) | (
                        (Job.created_at == created_at) & (Job.id > job_id)
                    )
                else:
                    beyond = (Job.created_at < created_at) | (
                        (Job.created_at == created_at) & (Job.id < job_id)
                    )
                statement = statement.where(beyond)
            ascending = after is not None
            order = (
                (Job.created_at.asc(), Job.id.asc()) if ascending else (Job.created_at.desc(), Job.id.desc())
            )
            rows = list((await session.execute(statement.order_by(*order).limit(limit))).scalars())
        if ascending:
            rows.reverse()
        return [ListedJob(view_of(row), self._readable_payload(row)) for row in rows]

    def _readable_payload(self, row: Job) -> dict[str, Any]:
        try:
            payload: dict[str, Any] = self._vault.decrypt_json(row.payload, _payload_aad(row.id))
        except VaultError:
            return {}
        return payload

    async def existing(self, job_ids: Sequence[str]) -> set[str]:
        async with self.database.session() as session:
            return set((await session.execute(select(Job.id).where(Job.id.in_(list(job_ids))))).scalars())

    async def unfinished(self) -> dict[tuple[str, str], int]:
        """How many ``created`` and ``running`` jobs there are, by (type, status)."""
        async with self.database.session() as session:
            rows = await session.execute(
                select(Job.type, Job.status, func.count())
                .where(Job.status.in_([JobStatus.CREATED.value, JobStatus.RUNNING.value]))
                .group_by(Job.type, Job.status)
            )
            return {(job_type, status): int(count) for job_type, status, count in rows}

    async def waiting(self, limit: int, job_types: Sequence[str]) -> list[str]:
        """Ids of ``created`` jobs of these types, oldest first (the embedded engine's queues)."""
        async with self.database.session() as session:
            return list(
                (
                    await session.execute(
                        select(Job.id)
                        .where(
                            Job.status == JobStatus.CREATED.value,
                            Job.type.in_(list(job_types)),
                            Job.expires_at > self._now(),
                        )
                        .order_by(Job.created_at)
                        .limit(limit)
                    )
                ).scalars()
            )

    # -- one attempt ---------------------------------------------------------------------------

    async def claim(self, job_id: str, worker_id: str) -> RunningJob | None:
        """Take a ``created`` job for one attempt; None when another worker has it or it is over."""
        now = self._now()
        async with self.database.transaction() as session:
            claimed = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.CREATED.value, Job.expires_at > now)
                .values(
                    status=JobStatus.RUNNING.value,
                    attempts=Job.attempts + 1,
                    worker_id=worker_id,
                    lease_until=now + self._lease,
                    started_at=now,
                    updated_at=now,
                )
            )
            if not _changed(claimed):
                return None
            row = (await session.execute(select(Job).where(Job.id == job_id))).scalar_one()
        try:
            payload = self._vault.decrypt_json(row.payload, _payload_aad(job_id))
        except VaultError as error:
            job = self._running(row, {})
            await self.finish(
                job, worker_id, failure=JobFailure(f"the job's input cannot be read: {error}", "vault_error")
            )
            return None
        return self._running(row, payload)

    @staticmethod
    def _running(row: Job, payload: dict[str, Any]) -> RunningJob:
        return RunningJob(
            id=row.id,
            organization_id=row.organization_id,
            owner_id=row.owner_id,
            type=row.type,
            attempt=row.attempts,
            max_attempts=row.max_attempts,
            payload=payload,
            expires_at=row.expires_at,
        )

    def _owned(self, job: RunningJob, worker_id: str) -> Any:
        return (
            (Job.id == job.id)
            & (Job.status == JobStatus.RUNNING.value)
            & (Job.worker_id == worker_id)
            & (Job.attempts == job.attempt)
        )

    async def renew(self, job: RunningJob, worker_id: str) -> bool:
        """Extend the lease; False means the attempt was taken away (swept) and must stop."""
        now = self._now()
        async with self.database.transaction() as session:
            renewed = await session.execute(
                update(Job)
                .where(self._owned(job, worker_id))
                .values(lease_until=now + self._lease, updated_at=now)
            )
        return _changed(renewed)

    async def finish(
        self,
        job: RunningJob,
        worker_id: str,
        *,
        result: dict[str, Any] | None = None,
        failure: JobFailure | None = None,
    ) -> JobView | None:
        """End the attempt as done (``result``) or failed (``failure``); None if it was not ours."""
        now = self._now()
        status = JobStatus.FAILED if failure is not None else JobStatus.DONE
        async with self.database.transaction() as session:
            finished = await session.execute(
                update(Job)
                .where(self._owned(job, worker_id))
                .values(
                    status=status.value,
                    result=result if failure is None else None,
                    error=failure.message[:MAX_ERROR_LENGTH] if failure is not None else None,
                    lease_until=None,
                    finished_at=now,
                    updated_at=now,
                )
            )
            if not _changed(finished):
                return None
            row = (await session.execute(select(Job).where(Job.id == job.id))).scalar_one()
        return view_of(row)

    async def release(self, job: RunningJob, worker_id: str) -> bool:
        """Give an attempt back without counting it (graceful shutdown); it is dispatched again."""
        async with self.database.transaction() as session:
            released = await session.execute(
                update(Job)
                .where(self._owned(job, worker_id))
                .values(
                    status=JobStatus.CREATED.value,
                    attempts=Job.attempts - 1,
                    worker_id=None,
                    lease_until=None,
                    updated_at=self._now(),
                )
            )
            if not _changed(released):
                return False
            await self.dispatcher.enqueue(session, [(job.id, job.type)])
        self.dispatcher.notify()
        return True

    # -- the sweep -----------------------------------------------------------------------------

    async def sweep(self) -> Swept:
        """Retry or fail every ``running`` job whose lease expired (its worker stopped responding)."""
        now = self._now()
        async with self.database.session() as session:
            rows = (
                await session.execute(
                    select(Job.id, Job.attempts, Job.max_attempts).where(
                        Job.status == JobStatus.RUNNING.value, Job.lease_until < now
                    )
                )
            ).all()
        swept = Swept([], [])
        for job_id, attempts, max_attempts in rows:
            expired = (
                (Job.id == job_id)
                & (Job.status == JobStatus.RUNNING.value)
                & (Job.attempts == attempts)
                & (Job.lease_until < now)
            )
            async with self.database.transaction() as session:
                if attempts < max_attempts:
                    retried = await self._retry(session, expired, job_id)
                    if retried is not None:
                        swept.retried.append(retried)
                    continue
                lost = await self._abandon(session, expired, job_id, attempts, max_attempts)
            if lost is not None:
                swept.abandoned.append(lost)
        if swept.retried:
            self.dispatcher.notify()
        return swept

    async def _retry(self, session: AsyncSession, expired: Any, job_id: str) -> RunningJob | None:
        retried = await session.execute(
            update(Job)
            .where(expired)
            .values(status=JobStatus.CREATED.value, worker_id=None, lease_until=None, updated_at=self._now())
        )
        if not _changed(retried):
            return None
        row = await self._row(session, job_id)
        await self.dispatcher.enqueue(session, [(job_id, row.type)])
        return self._swept(row)

    async def _abandon(
        self, session: AsyncSession, expired: Any, job_id: str, attempts: int, max_attempts: int
    ) -> Abandoned | None:
        message = f"worker stopped responding during attempt {attempts} of {max_attempts}"
        now = self._now()
        failed = await session.execute(
            update(Job)
            .where(expired)
            .values(
                status=JobStatus.FAILED.value,
                error=message,
                lease_until=None,
                finished_at=now,
                updated_at=now,
            )
        )
        if not _changed(failed):
            return None
        row = await self._row(session, job_id)
        return Abandoned(self._swept(row), view_of(row), JobFailure(message, "worker_lost"))

    @staticmethod
    async def _row(session: AsyncSession, job_id: str) -> Job:
        return (await session.execute(select(Job).where(Job.id == job_id))).scalar_one()

    def _swept(self, row: Job) -> RunningJob:
        """The attempt that lost its lease, with its payload when it can still be read."""
        return self._running(row, self._readable_payload(row))

    # -- expiry --------------------------------------------------------------------------------

    async def purge_expired(self, *, batch: int = 500) -> int:
        """Delete expired jobs that are not running (a running one goes once it has finished)."""
        purged = 0
        while True:
            async with self.database.transaction() as session:
                ids = list(
                    (
                        await session.execute(
                            select(Job.id)
                            .where(Job.expires_at <= self._now(), Job.status != JobStatus.RUNNING.value)
                            .limit(batch)
                        )
                    ).scalars()
                )
                if ids:
                    await session.execute(delete(Job).where(Job.id.in_(ids)))
            purged += len(ids)
            if len(ids) < batch:
                return purged
