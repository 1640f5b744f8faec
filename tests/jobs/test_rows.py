"""The job row state machine on a real store: every transition is a compare-and-swap."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from clock import FakeClock
from keyhole.errors import UpstreamTimeout
from keyhole.jobs import JobFailure, JobRegistry, JobStatus, JobView, RunningJob
from keyhole.jobs.maintenance import Maintenance
from keyhole.jobs.models import Job
from keyhole.jobs.queues import PROXY_QUEUE
from keyhole.jobs.repository import JobRepository
from keyhole.jobs.runner import JobRunner
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.store.migrate import upgrade
from keyhole.tenancy.models import Organization
from keyhole.vault import KeyRing, Vault


class Handler:
    """A job handler that does what each test tells it to, and remembers how jobs ended."""

    def __init__(self) -> None:
        self.ends: list[tuple[str, JobFailure | None]] = []
        self.discarded: list[str] = []
        self.gate = asyncio.Event()
        self.behaviour = "ok"

    async def run(self, job: RunningJob) -> dict[str, Any]:
        if self.behaviour == "wait":
            await self.gate.wait()
        if self.behaviour == "timeout":
            raise UpstreamTimeout("timed out waiting for upstream:443")
        if self.behaviour == "crash":
            raise RuntimeError("bug")
        return {"echo": job.payload["value"], "attempt": job.attempt}

    async def finished(self, job: RunningJob, view: JobView, failure: JobFailure | None) -> None:
        self.ends.append((view.status.value, failure))

    async def discard(self, job: RunningJob, result: dict[str, Any]) -> None:
        self.discarded.append(job.id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(
    tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[JobRepository, str, Handler, JobRegistry]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    await upgrade(url)
    database = Database(url)
    organization = Organization(id=str(uuid.uuid4()), name="rows", created_at=utcnow())
    async with database.transaction() as session:
        session.add(organization)
    rows = JobRepository(
        database,
        Vault(KeyRing.load(None, tmp_path / "keys")),
        lease_seconds=1,
        max_attempts=2,
        ttl_seconds=60,
        clock=clock,
    )
    handler = Handler()
    registry = JobRegistry()
    registry.register("connectionproxy", handler, queue=PROXY_QUEUE)
    try:
        yield rows, organization.id, handler, registry
    finally:
        await database.dispose()


async def submit(rows: JobRepository, organization_id: str) -> JobView:
    return await rows.insert(
        organization_id=organization_id, owner_id="user-1", job_type="connectionproxy", payload={"value": 42}
    )


async def test_a_job_is_claimed_once(store: tuple[JobRepository, str, Handler, JobRegistry]) -> None:
    rows, organization_id, _, _ = store
    job = await submit(rows, organization_id)
    assert job.status == JobStatus.CREATED and await rows.waiting(10, ["connectionproxy"]) == [job.id]
    claims = await asyncio.gather(*(rows.claim(job.id, f"w{n}") for n in range(5)))
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    assert winners[0].payload == {"value": 42} and winners[0].attempt == 1
    assert await rows.waiting(10, ["connectionproxy"]) == []


async def test_run_finish_and_results(store: tuple[JobRepository, str, Handler, JobRegistry]) -> None:
    rows, organization_id, handler, registry = store
    runner = JobRunner(rows, registry, lease_seconds=1, worker_id="w1")
    job = await submit(rows, organization_id)
    await runner.run(job.id)
    view = await rows.get(organization_id, job.id)
    assert view is not None
    assert (view.status, view.result, view.error) == (JobStatus.DONE, {"echo": 42, "attempt": 1}, None)
    assert handler.ends == [("done", None)]
    await runner.run(job.id)  # a duplicate dispatch finds nothing to claim
    assert handler.ends == [("done", None)]
    assert await rows.get(str(uuid.uuid4()), job.id) is None  # other organizations see nothing


@pytest.mark.parametrize(
    ("behaviour", "message", "key"),
    [
        ("timeout", "timed out waiting for upstream:443", "upstream_timeout"),
        (
            "crash",
            "internal error while running the job; quote the job id when reporting it",
            "internal_error",
        ),
    ],
)
async def test_failures_end_the_job(
    store: tuple[JobRepository, str, Handler, JobRegistry], behaviour: str, message: str, key: str
) -> None:
    rows, organization_id, handler, registry = store
    handler.behaviour = behaviour
    job = await submit(rows, organization_id)
    await JobRunner(rows, registry, lease_seconds=1, worker_id="w1").run(job.id)
    view = await rows.get(organization_id, job.id)
    assert view is not None
    assert (view.status, view.error, view.result) == (JobStatus.FAILED, message, None)
    assert handler.ends == [("failed", JobFailure(message, key))]


async def test_the_sweep_retries_then_fails_a_lost_job(
    store: tuple[JobRepository, str, Handler, JobRegistry], clock: FakeClock
) -> None:
    rows, organization_id, handler, registry = store
    maintenance = Maintenance(rows, registry)
    job = await submit(rows, organization_id)
    first = await rows.claim(job.id, "dead-1")
    assert first is not None
    assert await maintenance.sweep() == 0  # the lease still runs
    clock.advance(1.2)
    assert await maintenance.sweep() == 0  # attempt 1 of 2 lost: back to created
    assert await rows.waiting(10, ["connectionproxy"]) == [job.id]
    assert not await rows.renew(first, "dead-1"), "a swept attempt must learn it lost its lease"
    assert await rows.finish(first, "dead-1", result={"late": True}) is None

    second = await rows.claim(job.id, "dead-2")
    assert second is not None and second.attempt == 2
    clock.advance(1.2)
    assert await maintenance.sweep() == 1
    view = await rows.get(organization_id, job.id)
    assert view is not None
    lost = "worker stopped responding during attempt 2 of 2"
    assert (view.status, view.error) == (JobStatus.FAILED, lost)
    assert handler.ends == [("failed", JobFailure(lost, "worker_lost"))]


async def test_the_sweep_reports_every_lost_lease_before_the_job_ends(
    store: tuple[JobRepository, str, Handler, JobRegistry], clock: FakeClock
) -> None:
    """The lease-lost hook sees each attempt whose worker stopped responding, retried or failed,
    with its payload, and before the handler learns that the job failed."""
    rows, organization_id, handler, registry = store
    maintenance = Maintenance(rows, registry)
    lost: list[tuple[int, dict[str, Any], int]] = []

    async def lease_lost(job: RunningJob) -> None:
        lost.append((job.attempt, job.payload, len(handler.ends)))

    maintenance.on_lease_lost("connectionproxy", lease_lost)
    job = await submit(rows, organization_id)
    for attempt in (1, 2):
        assert await rows.claim(job.id, f"dead-{attempt}") is not None
        clock.advance(1.2)
        await maintenance.sweep()
    assert lost == [(1, {"value": 42}, 0), (2, {"value": 42}, 0)]
    assert [status for status, _ in handler.ends] == ["failed"]
    await maintenance.sweep()
    assert len(lost) == 2  # a lease is reported once


async def test_a_lost_lease_cancels_the_work_and_discards_its_result(
    store: tuple[JobRepository, str, Handler, JobRegistry],
) -> None:
    rows, organization_id, handler, registry = store
    handler.behaviour = "wait"
    job = await submit(rows, organization_id)
    claimed = await rows.claim(job.id, "slow")
    assert claimed is not None
    runner = JobRunner(rows, registry, lease_seconds=1, worker_id="slow")
    running = asyncio.create_task(runner.execute(claimed))
    # another process took the attempt over (as if this worker had stalled past its lease)
    async with rows.database.transaction() as session:
        await session.execute(update(Job).where(Job.id == job.id).values(worker_id="someone-else"))
    await asyncio.wait_for(running, 5)  # the heartbeat notices and cancels the handler
    view = await rows.get(organization_id, job.id)
    assert view is not None and view.status == JobStatus.RUNNING  # left to its new owner
    assert handler.ends == []


async def test_shutdown_gives_the_attempt_back(
    store: tuple[JobRepository, str, Handler, JobRegistry],
) -> None:
    rows, organization_id, handler, registry = store
    handler.behaviour = "wait"
    job = await submit(rows, organization_id)
    claimed = await rows.claim(job.id, "stopping")
    assert claimed is not None
    running = asyncio.create_task(
        JobRunner(rows, registry, lease_seconds=1, worker_id="stopping").execute(claimed)
    )
    await asyncio.sleep(0.1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await rows.waiting(10, ["connectionproxy"]) == [job.id]
    again = await rows.claim(job.id, "next")
    assert again is not None and again.attempt == 1  # a graceful stop does not use up an attempt


async def test_expired_jobs_are_purged(
    store: tuple[JobRepository, str, Handler, JobRegistry], clock: FakeClock
) -> None:
    rows, organization_id, _, _ = store
    job = await submit(rows, organization_id)
    assert await rows.purge_expired() == 0
    clock.advance(60.5)  # past the TTL
    assert await rows.get(organization_id, job.id) is None
    assert await rows.purge_expired() == 1
