"""The same query code on the distributed engine: `keyhole worker` processes on procrastinate.

The API process and the worker are different processes here, so a cancel travels through the
query row (the worker polls it), and a worker killed mid-query is recovered by the job sweep.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from conftest import Keys
from jobs.support import Databases, Deployment, deploy, kill9

from .support import POSTGRES, run, sdk, walk


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    databases = Databases()
    instance = deploy(
        tmp_path_factory.mktemp("queries-distributed"),
        "procrastinate",
        databases,
        workers=1,
        KEYHOLE_QUERY_PAGE_ROWS="500",
        KEYHOLE_JOB_LEASE_SECONDS="3",
        KEYHOLE_QUERY_CANCEL_POLL_SECONDS="0.2",
    )
    yield instance
    instance.stop()
    databases.drop_all()


@pytest.fixture(scope="module")
def tenant(deployment: Deployment) -> Keys:
    return deployment.server.bootstrap("dist-org", "dist@dist.test")


@pytest.fixture(scope="module")
def connection_id(deployment: Deployment, tenant: Keys) -> str:
    client = sdk(deployment.server, tenant.user_api_key)
    return str(client.connections.create(name="pg", type="postgresql", configuration=dict(POSTGRES)).data.id)


def test_a_worker_process_runs_the_query(deployment: Deployment, tenant: Keys, connection_id: str) -> None:
    client = sdk(deployment.server, tenant.user_api_key)
    result = run(client, connection_id, "SELECT g FROM generate_series(1, 1750) g ORDER BY g")
    walked = walk(client, result.data.id)
    assert walked.pages == 4 and [row["g"] for row in walked.rows] == list(range(1, 1751))


def test_cancel_reaches_a_query_running_in_another_process(
    deployment: Deployment, tenant: Keys, connection_id: str
) -> None:
    client = sdk(deployment.server, tenant.user_api_key)
    submitted = client.query_runner.run_query(connection_id=connection_id, query="SELECT pg_sleep(60)")
    deadline = time.monotonic() + 30
    while client.query_runner.get_query(id=submitted.data.id).data.status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    started = time.monotonic()
    with httpx.Client(base_url=deployment.server.url, headers=tenant.bearer, timeout=30) as http:
        cancelled = http.delete(f"/api/queries/{submitted.data.id}").json()["data"]
    assert (cancelled["status"], cancelled["error"]) == ("failed", "cancelled")
    assert time.monotonic() - started < 5


def test_a_killed_worker_does_not_leave_the_query_running(
    deployment: Deployment, tenant: Keys, connection_id: str
) -> None:
    client = sdk(deployment.server, tenant.user_api_key)
    submitted = client.query_runner.run_query(
        connection_id=connection_id, query="SELECT g FROM generate_series(1, 3) g, pg_sleep(4) s ORDER BY g"
    )
    deadline = time.monotonic() + 30
    while client.query_runner.get_query(id=submitted.data.id).data.status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    kill9(deployment.workers[0])
    deployment.start_worker()
    deadline = time.monotonic() + 90
    while (result := client.query_runner.get_query(id=submitted.data.id)).data.status not in (
        "done",
        "failed",
    ):
        assert time.monotonic() < deadline, "the query stayed running after its worker died"
        time.sleep(0.2)
    # read-only: run again from scratch by the new worker
    assert result.data.status == "done", result.data.error
    assert result.data.results == [{"g": 1}, {"g": 2}, {"g": 3}]
