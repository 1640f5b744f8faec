"""Runs one attempt of a job: the same code in the embedded worker and in ``keyhole worker``.

While the handler works, a heartbeat renews the lease every third of its length. If a renewal
finds the attempt gone (the sweep gave it to another worker), the handler is cancelled and
its result, if any, discarded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from typing import Any

from keyhole.errors import KeyholeError
from keyhole.jobs import metrics
from keyhole.jobs.records import JobFailure, JobHandler, JobRegistry, RunningJob
from keyhole.jobs.repository import JobRepository

logger = logging.getLogger(__name__)

INTERNAL_FAILURE = "internal error while running the job; quote the job id when reporting it"


def new_worker_id() -> str:
    """``host:pid:random``: unique per process, readable in the jobs table."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner:
    def __init__(
        self, rows: JobRepository, registry: JobRegistry, *, lease_seconds: float, worker_id: str
    ) -> None:
        self._rows = rows
        self._registry = registry
        self._renew_every = lease_seconds / 3
        self.worker_id = worker_id

    async def run(self, job_id: str) -> None:
        """Claim and run ``job_id``; does nothing when it is not ``created`` (already taken or over)."""
        job = await self._rows.claim(job_id, self.worker_id)
        if job is not None:
            await self.execute(job)

    async def execute(self, job: RunningJob) -> None:
        handler = self._registry.get(job.type)
        if handler is None:
            await self._end(
                job, None, None, JobFailure(f"no worker here runs {job.type} jobs", "unknown_job_type")
            )
            return
        started = time.perf_counter()
        queue = self._registry.queue_of(job.type)
        running = metrics.ATTEMPTS_RUNNING.labels(queue)
        running.inc()
        logger.info("job attempt started", extra=_fields(job))
        work = asyncio.create_task(handler.run(job), name=f"job-{job.id}")
        lost = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(job, work, lost), name=f"lease-{job.id}")
        result: dict[str, Any] | None = None
        failure: JobFailure | None = None
        try:
            result = await work
        except asyncio.CancelledError:
            if not lost.is_set():  # we are shutting down: give the attempt back
                await self._rows.release(job, self.worker_id)
                raise
            logger.warning("job %s attempt %d lost its lease; another worker retries it", job.id, job.attempt)
            return
        except KeyholeError as error:
            failure = JobFailure(error.message, error.key)
        except Exception:
            logger.exception("job %s (%s) attempt %d crashed", job.id, job.type, job.attempt)
            failure = JobFailure(INTERNAL_FAILURE, "internal_error")
        finally:
            heartbeat.cancel()
            running.dec()
        await self._end(job, handler, result, failure)
        elapsed = time.perf_counter() - started
        metrics.ATTEMPT_SECONDS.labels(queue).observe(elapsed)
        metrics.ATTEMPTS.labels(queue, "failed" if failure else "done", failure.key if failure else "").inc()
        logger.info(
            "job attempt finished",
            extra={
                **_fields(job),
                "outcome": "failed" if failure else "done",
                "error_key": failure.key if failure else None,
                "ms": round(elapsed * 1000, 1),
            },
        )

    async def _end(
        self,
        job: RunningJob,
        handler: JobHandler | None,
        result: dict[str, Any] | None,
        failure: JobFailure | None,
    ) -> None:
        view = await self._rows.finish(job, self.worker_id, result=result, failure=failure)
        if handler is None:
            return
        if view is None:
            if result is not None:
                await handler.discard(job, result)
            return
        try:
            await handler.finished(job, view, failure)
        except Exception:
            logger.exception("after-finish hook of job %s failed", job.id)

    async def _heartbeat(self, job: RunningJob, work: asyncio.Task[Any], lost: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                kept = await self._rows.renew(job, self.worker_id)
            except Exception:  # a store hiccup: try again next beat; the lease covers two misses
                logger.warning("could not renew the lease of job %s", job.id, exc_info=True)
                continue
            if not kept:
                lost.set()
                work.cancel()
                return


def _fields(job: RunningJob) -> dict[str, object]:
    return {"job_id": job.id, "job_type": job.type, "attempt": job.attempt}
