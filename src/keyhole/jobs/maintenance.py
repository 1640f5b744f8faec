"""The periodic work both engines schedule: the lease sweep and the expiry purge."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from keyhole.jobs.records import JobRegistry
from keyhole.jobs.rows import JobRows

logger = logging.getLogger(__name__)

Purger = Callable[[], Awaitable[int]]


class Maintenance:
    def __init__(self, rows: JobRows, registry: JobRegistry) -> None:
        self._rows = rows
        self._registry = registry
        self._purgers: dict[str, Purger] = {"jobs": rows.purge_expired}

    def add_purger(self, name: str, purger: Purger) -> None:
        """Register an expiry task (blobs, idempotency records, query results…)."""
        self._purgers[name] = purger

    async def sweep(self) -> int:
        """Retry or fail jobs whose worker stopped responding; returns how many were failed."""
        abandoned = await self._rows.sweep()
        for lost in abandoned:
            logger.warning("job %s failed: %s", lost.job.id, lost.failure.message)
            handler = self._registry.get(lost.job.type)
            if handler is None:
                continue
            try:
                await handler.finished(lost.job, lost.view, lost.failure)
            except Exception:
                logger.exception("after-finish hook of job %s failed", lost.job.id)
        return len(abandoned)

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
