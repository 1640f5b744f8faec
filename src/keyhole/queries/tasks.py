"""Queries on the job system: the ``query`` job type and its lease-lost hook (both wired, with
the expiry purger, in ``QueryService.build``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keyhole.jobs import JobFailure, JobView, RunningJob

if TYPE_CHECKING:
    from keyhole.queries.service import QueryService

QUERY_JOB = "query"


class QueryJob:
    """The ``query`` job type: runs one query; callers read the query row, not the job."""

    def __init__(self, queries: QueryService) -> None:
        self._queries = queries

    async def run(self, job: RunningJob) -> dict[str, Any]:
        return await self._queries.run(
            str(job.payload["query_id"]), str(job.payload["sql"]), job_attempt=job.attempt
        )

    async def finished(self, job: RunningJob, view: JobView, failure: JobFailure | None) -> None:
        query_id = job.payload.get("query_id")
        if failure is not None and isinstance(query_id, str):
            await self._queries.job_failed(query_id, failure.message, failure.key)

    async def lease_lost(self, job: RunningJob) -> None:
        """The sweep found the attempt's lease expired (retried or failed): its worker is presumed
        dead, and whatever statement it left on the database is cancelled now."""
        query_id = job.payload.get("query_id")
        if isinstance(query_id, str):
            await self._queries.cancel_orphans(query_id, through_attempt=job.attempt)

    async def discard(self, job: RunningJob, result: dict[str, Any]) -> None:
        return None  # a run that lost its lease never marks the query done (its attempt is stale)
