"""The distributed engine: procrastinate on the metadata store's PostgreSQL.

* API servers only defer. The procrastinate job is inserted through the very psycopg
  connection that inserts the job row, inside the same transaction (procrastinate's
  ``configure(connection=…)``): a job row and its queue entry commit together or not at all.
* ``keyhole worker`` runs one procrastinate worker per queue it serves (``--queues``): async
  proxy calls and queries each with their own slots, and one slot for the periodic sweep and
  purge, so long queries never hold up a short download, and nothing starves the sweep that
  recovers the jobs of dead workers.
* Procrastinate only dispatches: the task runs ``JobRunner.run(job_id)``, which claims the row
  with a compare-and-swap; a duplicate or stale queue entry finds nothing to claim.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping, Sequence
from typing import Any

import procrastinate
from procrastinate.schema import SchemaManager
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.jobs.maintenance import Maintenance
from keyhole.jobs.queues import ALL_QUEUES, MAINTENANCE_QUEUE, PROXY_QUEUE
from keyhole.jobs.records import JobRegistry
from keyhole.jobs.repository import JobRepository
from keyhole.jobs.runner import JobRunner

logger = logging.getLogger(__name__)

RUN_JOB = "keyhole.run_job"
SCHEMA_LOCK = 0x6B6579686F6C65  # "keyhole": serialises schema creation between starting processes
SHUTDOWN_GRACE_SECONDS = 5.0


def psycopg_url(database_url: str) -> str:
    """The SQLAlchemy URL of the same database through psycopg 3 (what procrastinate speaks)."""
    url = make_url(database_url)
    query = dict(url.query)
    if "ssl" in query and "sslmode" not in query:  # asyncpg spells it ssl=, libpq sslmode=
        query["sslmode"] = query.pop("ssl")
    return url.set(drivername="postgresql+psycopg", query=query).render_as_string(hide_password=False)


def libpq_conninfo(database_url: str) -> str:
    url = make_url(psycopg_url(database_url))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _every(seconds: float) -> str:
    """A cron expression (croniter, seconds as the sixth field) firing about every ``seconds``."""
    whole = max(1, round(seconds))
    if whole < 60:
        return f"* * * * * */{whole}"
    return f"*/{max(1, whole // 60)} * * * *"


async def _driver_connection(session: AsyncSession) -> Any:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


class ProcrastinateEngine:
    name = "procrastinate"
    queues: tuple[str, ...] = ALL_QUEUES

    def __init__(
        self,
        rows: JobRepository,
        runner: JobRunner,
        maintenance: Maintenance,
        registry: JobRegistry,
        *,
        database_url: str,
        concurrency: Mapping[str, int],
        sweep_seconds: float,
        purge_seconds: float,
    ) -> None:
        self._rows = rows
        self._runner = runner
        self._maintenance = maintenance
        self._registry = registry
        self._concurrency = dict(concurrency)  # slots per job queue
        self._conninfo = libpq_conninfo(database_url)
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=self._conninfo, min_size=1, max_size=4)
        )
        self._run_job = self._define_tasks(sweep_seconds, purge_seconds)

    def _define_tasks(self, sweep_seconds: float, purge_seconds: float) -> Any:
        app, runner, maintenance = self.app, self._runner, self._maintenance

        @app.task(name=RUN_JOB, queue=PROXY_QUEUE, pass_context=False)  # deferred to each type's queue
        async def run_job(job_id: str) -> None:
            await runner.run(job_id)

        @app.periodic(cron=_every(sweep_seconds), periodic_id="sweep")
        @app.task(name="keyhole.sweep", queue=MAINTENANCE_QUEUE, pass_context=False)
        async def sweep(timestamp: int) -> None:
            await maintenance.sweep()

        @app.periodic(cron=_every(purge_seconds), periodic_id="purge")
        @app.task(name="keyhole.purge", queue=MAINTENANCE_QUEUE, pass_context=False)
        async def purge(timestamp: int) -> None:
            await maintenance.purge()
            await self._tidy_queue()

        return run_job

    # -- Dispatcher ----------------------------------------------------------------------------

    async def enqueue(self, session: AsyncSession, jobs: Sequence[tuple[str, str]]) -> None:
        connection = await _driver_connection(session)
        by_queue: dict[str, list[str]] = {}
        for job_id, job_type in jobs:
            by_queue.setdefault(self._registry.queue_of(job_type), []).append(job_id)
        for queue, job_ids in by_queue.items():
            await self._run_job.configure(connection=connection, queue=queue).batch_defer_async(
                *({"job_id": job_id} for job_id in job_ids)
            )

    def notify(self) -> None:
        return None  # procrastinate's own NOTIFY fires when the transaction commits

    # -- lifecycle -----------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Create procrastinate's schema once (under an advisory lock) if it is missing."""
        async with self._rows.database.transaction() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            present = (await session.execute(text("SELECT to_regclass('procrastinate_jobs')"))).scalar()
            if present is None:
                connection = await _driver_connection(session)
                await connection.execute(SchemaManager.get_schema())
                logger.info("created the procrastinate schema")

    def start(self) -> None:
        return None  # API servers only defer; `keyhole worker` runs the jobs

    async def stop(self) -> None:
        return None

    async def run_worker(self, queues: Sequence[str] = ALL_QUEUES) -> None:
        """Run until SIGINT/SIGTERM: each job queue of ``queues`` with its own slots, plus one
        slot for the sweep and purge when ``queues`` holds the maintenance queue."""
        async with self.app.open_async():
            options: dict[str, Any] = {
                "install_signal_handlers": False,
                "delete_jobs": "always",
                "shutdown_graceful_timeout": SHUTDOWN_GRACE_SECONDS,
                "listen_notify": True,
                "fetch_job_polling_interval": 2.0,
            }
            slots = {**self._concurrency, MAINTENANCE_QUEUE: 1}
            workers = [
                asyncio.create_task(
                    self.app.run_worker_async(
                        queues=[queue],
                        concurrency=slots[queue],
                        name=f"{queue}@{self._runner.worker_id}",
                        **options,
                    )
                )
                for queue in queues
            ]
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, lambda: [task.cancel() for task in workers])
            logger.info("worker %s started", self._runner.worker_id, extra={"engine": self.name})
            results = await asyncio.gather(*workers, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    logger.error("a procrastinate worker stopped", exc_info=result)

    async def _tidy_queue(self) -> None:
        """Finish queue entries left ``doing`` by dead workers, and dispatch their jobs again.

        A worker killed after taking an entry but before claiming its row leaves the row
        ``created`` with no entry, which the lease sweep (``running`` rows only) never sees. The
        claim is a compare-and-swap, so a new entry for a row already claimed, retried or over
        runs nothing."""
        manager = self.app.job_manager
        try:
            stalled_entries = await manager.get_stalled_jobs()
        except Exception:  # retried at the next purge
            logger.warning("could not list stalled queue entries", exc_info=True)
            return
        for stalled in stalled_entries:
            try:
                if stalled.task_name == RUN_JOB:  # first: a failure here leaves the entry to retry
                    await self._run_job.configure(queue=stalled.queue).defer_async(**stalled.task_kwargs)
                await manager.finish_job(stalled, status=procrastinate.jobs.Status.FAILED, delete_job=True)
            except Exception:  # e.g. another worker's purge tidied it first; the others go on
                logger.warning("could not tidy stalled queue entry %s", stalled.id, exc_info=True)
