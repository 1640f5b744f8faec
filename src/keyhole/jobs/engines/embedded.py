"""The embedded engine: a worker inside ``keyhole serve``. The ``created`` rows are the queue.

A dispatcher claims up to ``concurrency`` waiting jobs, woken at once by a local submit and
otherwise polling, so jobs submitted through another process (another ``--workers`` process
on the same SQLite file, or a job given back on shutdown) are found too. The lease sweep and
the expiry purge run on their own timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.jobs.maintenance import Maintenance
from keyhole.jobs.rows import JobRows
from keyhole.jobs.runner import JobRunner

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0


class EmbeddedEngine:
    name = "embedded"

    def __init__(
        self,
        rows: JobRows,
        runner: JobRunner,
        maintenance: Maintenance,
        *,
        concurrency: int,
        sweep_seconds: float,
        purge_seconds: float,
    ) -> None:
        self._rows = rows
        self._runner = runner
        self._maintenance = maintenance
        self._concurrency = concurrency
        self._sweep_seconds = sweep_seconds
        self._purge_seconds = purge_seconds
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []

    # -- Dispatcher ----------------------------------------------------------------------------

    async def enqueue(self, session: AsyncSession, job_ids: Sequence[str]) -> None:
        return None  # the committed row is all the dispatcher needs

    def notify(self) -> None:
        self._wake.set()

    # -- lifecycle -----------------------------------------------------------------------------

    async def prepare(self) -> None:
        return None

    def start(self) -> None:
        if self._loops:
            return
        self._loops = [
            asyncio.create_task(self._dispatch(), name="jobs-dispatch"),
            asyncio.create_task(self._every(self._sweep_seconds, self._maintenance.sweep), name="jobs-sweep"),
            asyncio.create_task(self._every(self._purge_seconds, self._maintenance.purge), name="jobs-purge"),
        ]

    async def stop(self) -> None:
        """Stop taking jobs; running attempts are cancelled and given back (not counted)."""
        loops, self._loops = self._loops, []
        for task in loops:
            task.cancel()
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*loops, *running, return_exceptions=True)

    # -- loops ---------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            free = self._concurrency - len(self._running)
            if free > 0:
                try:
                    await self._take(free)
                except Exception:
                    logger.exception("the job dispatcher could not read the queue; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    async def _take(self, free: int) -> None:
        for job_id in await self._rows.waiting(free):
            job = await self._rows.claim(job_id, self._runner.worker_id)
            if job is None:
                continue  # another process took it
            task = asyncio.create_task(self._runner.execute(job), name=f"attempt-{job.id}")
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free
        if not task.cancelled() and task.exception() is not None:
            logger.error("job attempt ended with an error", exc_info=task.exception())

    async def _every(self, seconds: float, work: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await work()
            except Exception:
                logger.exception("periodic job maintenance failed; retrying")
            await asyncio.sleep(seconds)
