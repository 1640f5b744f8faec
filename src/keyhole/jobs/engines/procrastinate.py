"""The distributed engine: procrastinate on the metadata store's PostgreSQL.

* API servers only defer. The procrastinate job is inserted through the very psycopg
  connection that inserts the job row, inside the same transaction (procrastinate's
  ``configure(connection=…)``): a job row and its queue entry commit together or not at all.
* ``keyhole worker`` runs two procrastinate workers in one process: one for jobs
  (``KEYHOLE_WORKER_CONCURRENCY`` at once) and one for the periodic sweep and purge, so long
  jobs can never starve the sweep that recovers the jobs of dead workers.
* Procrastinate only dispatches: the task runs ``JobRunner.run(job_id)``, which claims the row
  with a compare-and-swap; a duplicate or stale queue entry finds nothing to claim.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

import procrastinate
from procrastinate.schema import SchemaManager
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.jobs.maintenance import Maintenance
from keyhole.jobs.rows import JobRows
from keyhole.jobs.runner import JobRunner

logger = logging.getLogger(__name__)

JOBS_QUEUE = "keyhole.jobs"
MAINTENANCE_QUEUE = "keyhole.maintenance"
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

    def __init__(
        self,
        rows: JobRows,
        runner: JobRunner,
        maintenance: Maintenance,
        *,
        database_url: str,
        concurrency: int,
        sweep_seconds: float,
        purge_seconds: float,
    ) -> None:
        self._rows = rows
        self._runner = runner
        self._maintenance = maintenance
        self._concurrency = concurrency
        self._conninfo = libpq_conninfo(database_url)
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=self._conninfo, min_size=1, max_size=4)
        )
        self._run_job = self._define_tasks(sweep_seconds, purge_seconds)

    def _define_tasks(self, sweep_seconds: float, purge_seconds: float) -> Any:
        app, runner, maintenance = self.app, self._runner, self._maintenance

        @app.task(name=RUN_JOB, queue=JOBS_QUEUE, pass_context=False)
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

    async def enqueue(self, session: AsyncSession, job_ids: Sequence[str]) -> None:
        connection = await _driver_connection(session)
        await self._run_job.configure(connection=connection).batch_defer_async(
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

    async def run_worker(self) -> None:
        """Run until SIGINT/SIGTERM: job slots, plus one slot for the sweep and purge."""
        async with self.app.open_async():
            options: dict[str, Any] = {
                "install_signal_handlers": False,
                "delete_jobs": "always",
                "shutdown_graceful_timeout": SHUTDOWN_GRACE_SECONDS,
                "listen_notify": True,
                "fetch_job_polling_interval": 2.0,
            }
            workers = [
                asyncio.create_task(
                    self.app.run_worker_async(
                        queues=[JOBS_QUEUE],
                        concurrency=self._concurrency,
                        name=f"jobs@{self._runner.worker_id}",
                        **options,
                    )
                ),
                asyncio.create_task(
                    self.app.run_worker_async(
                        queues=[MAINTENANCE_QUEUE],
                        concurrency=1,
                        name=f"maintenance@{self._runner.worker_id}",
                        **options,
                    )
                ),
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
        """Finish queue entries left ``doing`` by dead workers (the rows were already swept)."""
        manager = self.app.job_manager
        try:
            for stalled in await manager.get_stalled_jobs():
                await manager.finish_job(stalled, status=procrastinate.jobs.Status.FAILED, delete_job=True)
        except Exception:  # tidying only: the job rows are already right
            logger.warning("could not tidy stalled queue entries", exc_info=True)
