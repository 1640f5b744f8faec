"""The job system's front door: submit and read jobs, and wire the configured engine."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from keyhole.errors import InvalidRequest, NotFound
from keyhole.jobs import metrics
from keyhole.jobs.engines import JobEngine
from keyhole.jobs.engines.embedded import EmbeddedEngine
from keyhole.jobs.engines.procrastinate import ProcrastinateEngine, psycopg_url
from keyhole.jobs.maintenance import Maintenance
from keyhole.jobs.queues import ALL_QUEUES, PROXY_QUEUE, QUERIES_QUEUE
from keyhole.jobs.records import JOB_TYPES, JobPage, JobRegistry, JobStatus, JobView
from keyhole.jobs.repository import JobRepository
from keyhole.jobs.runner import JobRunner
from keyhole.settings import Settings
from keyhole.store.database import Database
from keyhole.tenancy.principal import Principal
from keyhole.vault import Vault

_JOB_ID = re.compile(r"^[0-9a-fA-F-]{1,64}$")
_UNFINISHED = (JobStatus.CREATED, JobStatus.RUNNING)


class JobService:
    def __init__(
        self,
        rows: JobRepository,
        registry: JobRegistry,
        maintenance: Maintenance,
        engine: JobEngine,
        *,
        own_database: Database | None = None,
    ) -> None:
        self.rows = rows
        self.registry = registry
        self.maintenance = maintenance
        self.engine = engine
        self._own_database = own_database

    @classmethod
    def build(cls, settings: Settings, database: Database, vault: Vault, *, worker_id: str) -> JobService:
        registry = JobRegistry()
        own_database = None
        if settings.job_engine == "procrastinate":
            # Job rows go through psycopg so that procrastinate enqueues in their transaction.
            own_database = Database(psycopg_url(settings.resolved_database_url))
        rows = JobRepository(
            own_database or database,
            vault,
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
            ttl_seconds=settings.job_ttl_seconds,
        )
        runner = JobRunner(rows, registry, lease_seconds=settings.job_lease_seconds, worker_id=worker_id)
        maintenance = Maintenance(rows, registry)
        slots = {PROXY_QUEUE: settings.proxy_job_concurrency, QUERIES_QUEUE: settings.query_job_concurrency}
        engine: EmbeddedEngine | ProcrastinateEngine
        if own_database is not None:
            engine = ProcrastinateEngine(
                rows,
                runner,
                maintenance,
                registry,
                database_url=settings.resolved_database_url,
                concurrency=slots,
                sweep_seconds=settings.job_sweep_seconds,
                purge_seconds=settings.purge_interval_seconds,
            )
        else:
            engine = EmbeddedEngine(
                rows,
                runner,
                maintenance,
                registry,
                concurrency=slots,
                sweep_seconds=settings.job_sweep_seconds,
                purge_seconds=settings.purge_interval_seconds,
            )
        rows.dispatcher = engine
        return cls(rows, registry, maintenance, engine, own_database=own_database)

    # -- for domains and dialects --------------------------------------------------------------

    async def submit(
        self, principal: Principal, job_type: str, payload: dict[str, Any], *, job_id: str | None = None
    ) -> JobView:
        """Create a job owned by ``principal``; it runs on the configured engine. A caller that
        records the job's id first (in its own row) passes it as ``job_id``."""
        if self.registry.get(job_type) is None:
            raise InvalidRequest(f"this server does not run {job_type} jobs", key="unsupported_job_type")
        return await self.rows.insert(
            organization_id=principal.organization_id,
            owner_id=principal.id,
            job_type=job_type,
            payload=payload,
            job_id=job_id,
        )

    async def existing(self, job_ids: Sequence[str]) -> set[str]:
        """Which of ``job_ids`` have a job row (finished or not, until it expires)."""
        return await self.rows.existing(job_ids)

    async def get(
        self, principal: Principal, job_type: str, job_id: str, *, owner_only: bool = False
    ) -> JobView:
        """A job of ``principal``'s organization (or only its own); unknown, foreign, expired → 404."""
        check_job_type(job_type)
        view = await self.rows.get(principal.organization_id, job_id) if _JOB_ID.match(job_id) else None
        if view is None or view.type != job_type or (owner_only and view.owner_id != principal.id):
            raise NotFound(f"no {job_type} job {job_id[:64]!r} (it may have expired)", key="job_not_found")
        return view

    async def list_owned(
        self,
        principal: Principal,
        job_type: str,
        *,
        limit: int = 25,
        before: str | None = None,
        after: str | None = None,
    ) -> JobPage:
        """The caller's own jobs of ``job_type`` (never another principal's), newest first, a page
        at a time: the newest, those older than job ``before``, or those newer than job ``after``."""
        check_job_type(job_type)
        if before is not None and after is not None:
            raise InvalidRequest("page with before or after, not both", key="invalid_cursor")
        cursor = before or after
        if cursor is not None and not _JOB_ID.match(cursor):
            raise _invalid_cursor()
        listed = await self.rows.list_owned(
            principal.organization_id, principal.id, job_type, limit=limit + 1, before=before, after=after
        )
        if listed is None:
            raise _invalid_cursor()
        if cursor is not None and not listed:  # nothing beyond the cursor any more: the newest
            return await self.list_owned(principal, job_type, limit=limit)
        if after is not None:
            jobs = listed[-limit:]
            newer = jobs[0].view.id if len(listed) > limit else None
            older: str | None = jobs[-1].view.id
        else:
            jobs = listed[:limit]
            newer = jobs[0].view.id if before is not None else None
            older = jobs[-1].view.id if len(listed) > limit else None
        return JobPage(jobs, older=older, newer=newer)

    async def observe(self) -> None:
        """Set the ``keyhole_jobs`` gauge from the store (called when metrics are scraped)."""
        counts = {(queue, status.value): 0 for queue in ALL_QUEUES for status in _UNFINISHED}
        for (job_type, status), count in (await self.rows.unfinished()).items():
            counts[(self.registry.queue_of(job_type), status)] += count
        for (queue, status), count in counts.items():
            metrics.JOBS.labels(queue, status).set(count)

    # -- lifecycle -----------------------------------------------------------------------------

    async def prepare(self) -> None:
        await self.engine.prepare()

    def start(self) -> None:
        self.engine.start()

    async def close(self) -> None:
        await self.engine.stop()
        if self._own_database is not None:
            await self._own_database.dispose()


def _invalid_cursor() -> InvalidRequest:
    return InvalidRequest(
        "the page cursor does not name one of your jobs (it may have expired); start from the newest",
        key="invalid_cursor",
    )


def check_job_type(job_type: str) -> None:
    if job_type not in JOB_TYPES:
        raise InvalidRequest(
            f"unknown job type {job_type[:64]!r}; use one of {', '.join(JOB_TYPES)}",
            key="invalid_job_type",
            metadata={"field": "type", "allowed": list(JOB_TYPES)},
        )
