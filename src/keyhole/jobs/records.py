"""Typed views of jobs and the contract a job type's handler fulfils."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from keyhole.jobs.queues import PROXY_QUEUE

# The job types the Polytomic dialect names (spec 2.4); only some have handlers on this server.
JOB_TYPES = ("createmodel", "updatemodel", "previewmodel", "samplemodel", "exportlogs", "connectionproxy")


class JobStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobView:
    id: str
    organization_id: str
    owner_id: str
    type: str
    status: JobStatus
    attempts: int
    max_attempts: int
    error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListedJob:
    """A job in its owner's listing, with its decrypted input ({} when it cannot be read)."""

    view: JobView
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a listing, newest first, and the cursors of the pages around it."""

    jobs: list[ListedJob]
    older: str | None
    newer: str | None


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job claimed by this worker for one attempt, with its decrypted payload."""

    id: str
    organization_id: str
    owner_id: str
    type: str
    attempt: int
    max_attempts: int
    payload: dict[str, Any]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class JobFailure:
    message: str
    key: str


class JobHandler(Protocol):
    """What a job type provides. ``run`` raises a ``KeyholeError`` to fail the job with its message."""

    async def run(self, job: RunningJob) -> dict[str, Any]: ...

    async def finished(self, job: RunningJob, view: JobView, failure: JobFailure | None) -> None:
        """Called once, by whichever process moved the job to ``done`` or ``failed``."""

    async def discard(self, job: RunningJob, result: dict[str, Any]) -> None:
        """A result produced after this attempt lost its lease: undo its side effects."""


class JobRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, JobHandler] = {}
        self._queues: dict[str, str] = {}

    def register(self, job_type: str, handler: JobHandler, *, queue: str) -> None:
        if job_type in self._handlers:
            raise ValueError(f"job type {job_type!r} already has a handler")
        self._handlers[job_type] = handler
        self._queues[job_type] = queue

    def get(self, job_type: str) -> JobHandler | None:
        return self._handlers.get(job_type)

    def queue_of(self, job_type: str) -> str:
        """The queue a job type runs on; a type without a handler goes to the proxy queue, where
        it fails at once with a clear error instead of waiting forever."""
        return self._queues.get(job_type, PROXY_QUEUE)

    def types_on(self, queue: str) -> list[str]:
        return [job_type for job_type, on in self._queues.items() if on == queue]
