"""Durable jobs: rows in the metadata store, run by an embedded worker or procrastinate.

The service lives in ``keyhole.jobs.service`` (imported by the service container only).
"""

from keyhole.jobs.records import (
    JOB_TYPES,
    JobFailure,
    JobHandler,
    JobPage,
    JobRegistry,
    JobStatus,
    JobView,
    ListedJob,
    RunningJob,
)

__all__ = [
    "JOB_TYPES",
    "JobFailure",
    "JobHandler",
    "JobPage",
    "JobRegistry",
    "JobStatus",
    "JobView",
    "ListedJob",
    "RunningJob",
]
