"""The periodic work both engines schedule: the lease sweep and the expiry purge."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from keyhole.jobs import metrics
from keyhole.jobs.records import JobRegistry, RunningJob
from keyhole.jobs.repository import JobRepository

logger = logging.getLogger(__name__)

Purger = Callable[[], Awaitable[int]]
LeaseLost = Callable[[RunningJob], Awaitable[None]]


class Maintenance:
    def __init__(self, rows: JobRepository, registry: JobRegistry) -> None:
        self._rows = rows
        self._registry = registry
        self._purgers: dict[str, Purger] = {"jobs": rows.purge_expired}
        self._lease_lost: dict[str, LeaseLost] = {}

    def add_purger(self, name: str, purger: Purger) -> None:
        """Register an expiry task (blobs, idempotency records, query results…)."""
        self._purgers[name] = purger

    def on_lease_lost(self, job_type: str, callback: LeaseLost) -> None:
        """Have the sweep call ``callback`` for every attempt of a ``job_type`` job whose lease it
        finds expired (the job retried or failed; before the handler's ``finished``): the attempt's
        worker is presumed dead, and what it left running elsewhere can be stopped."""
        self._lease_lost[job_type] = callback

    async def sweep(self) -> int:
        """Retry or fail jobs whose worker stopped responding; returns how many were failed."""
        swept = await self._rows.sweep()
        for job in swept.retried:
            metrics.SWEPT.labels(self._registry.queue_of(job.type), "retried").inc()
            await self._lost(job)
        for lost in swept.abandoned:
            metrics.SWEPT.labels(self._registry.queue_of(lost.job.type), "failed").inc()
            await self._lost(lost.job)
            logger.warning("job %s failed: %s", lost.job.id, lost.failure.message)
            handler = self._registry.get(lost.job.type)
            if handler is None:
                continue
            try:
                await handler.finished(lost.job, lost.view, lost.failure)
            except Exception:
                logger.exception("after-finish hook of job %s failed", lost.job.id)
        return len(swept.abandoned)

    async def _lost(self, job: RunningJob) -> None:
        callback = self._lease_lost.get(job.type)
        if callback is None:
            return
        try:
            await callback(job)
        except Exception:
            logger.exception("lease-lost hook of job %s failed", job.id)

    async def purge(self) -> dict[str, int]:
        """Delete everything that has expired; one failing purger does not stop the others."""
        counts: dict[str, int] = {}
        for name, purger in self._purgers.items():
            try:
                counts[name] = await purger()
            except Exception:
                logger.exception("expiry of %s failed; retried next interval", name)
        if any(counts.values()):
            logger.info("expired", extra={"purged": counts})
        return counts
