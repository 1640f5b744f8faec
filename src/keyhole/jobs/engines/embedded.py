"""The embedded engine: a worker inside ``keyhole serve``. The ``created`` rows are the queue.

A dispatcher claims waiting jobs for each queue up to that queue's own number of slots (so an
async proxy call never waits behind long queries), woken at once by a local submit and
otherwise polling, so jobs submitted through another process (another ``--workers`` process
on the same SQLite file, or a job given back on shutdown) are found too. The lease sweep and
the expiry purge run on their own timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.jobs.maintenance import Maintenance
from keyhole.jobs.queues import ALL_QUEUES
from keyhole.jobs.records import JobRegistry
from keyhole.jobs.repository import JobRepository
from keyhole.jobs.runner import JobRunner

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0


class EmbeddedEngine:
    name = "embedded"
    queues: tuple[str, ...] = ALL_QUEUES

    def __init__(
        self,
        rows: JobRepository,
        runner: JobRunner,
        maintenance: Maintenance,
        registry: JobRegistry,
        *,
        concurrency: Mapping[str, int],
        sweep_seconds: float,
        purge_seconds: float,
    ) -> None:
        self._rows = rows
        self._runner = runner
        self._maintenance = maintenance
        self._registry = registry
        self._concurrency = dict(concurrency)  # slots per job queue
        self._sweep_seconds = sweep_seconds
        self._purge_seconds = purge_seconds
        self._wake = asyncio.Event()
        self._running: dict[str, set[asyncio.Task[None]]] = {queue: set() for queue in concurrency}
        self._loops: list[asyncio.Task[None]] = []

    # -- Dispatcher ----------------------------------------------------------------------------

    async def enqueue(self, session: AsyncSession, jobs: Sequence[tuple[str, str]]) -> None:
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
        running = [task for tasks in self._running.values() for task in tasks]
        for task in running:
            task.cancel()
        await asyncio.gather(*loops, *running, return_exceptions=True)

    # -- loops ---------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            for queue, slots in self._concurrency.items():
                free = slots - len(self._running[queue])
                job_types = self._registry.types_on(queue)
                if free <= 0 or not job_types:
                    continue
                try:
                    await self._take(queue, free, job_types)
                except Exception:
                    logger.exception("the job dispatcher could not read queue %s; retrying", queue)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    async def _take(self, queue: str, free: int, job_types: Sequence[str]) -> None:
        running = self._running[queue]
        for job_id in await self._rows.waiting(free, job_types):
            job = await self._rows.claim(job_id, self._runner.worker_id)
            if job is None:
                continue  # another process took it
            task = asyncio.create_task(self._runner.execute(job), name=f"attempt-{job.id}")
            running.add(task)
            task.add_done_callback(lambda done: self._done(running, done))

    def _done(self, running: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
        running.discard(task)
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
