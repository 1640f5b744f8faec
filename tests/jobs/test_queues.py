"""Separate queues: a short async proxy call finishes while long queries hold every query slot,
and a `keyhole worker --queues …` takes jobs from its queues only."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PYTHON, require_service, server_env
from queries.support import POSTGRES

from .support import Databases, Deployment, Upstream, api, deploy


def _query_connection(client: httpx.Client) -> str:
    created = client.post(
        "/api/connections",
        json={"name": "slow database", "type": "postgresql", "configuration": POSTGRES},
    )
    assert created.status_code == 200, created.text
    return str(created.json()["data"]["id"])


def _submit_query(client: httpx.Client, connection_id: str, sql: str) -> str:
    submitted = client.post(f"/api/connections/{connection_id}/query", json={"query": sql})
    assert submitted.status_code == 200, submitted.text
    return str(submitted.json()["data"]["id"])


def _query(client: httpx.Client, query_id: str) -> dict[str, Any]:
    response = client.get(f"/api/queries/{query_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _wait_query(client: httpx.Client, query_id: str, until: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        data = _query(client, query_id)
        if data["status"] in until or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


@pytest.mark.postgres
def test_a_short_proxy_job_never_waits_behind_queries(
    tmp_path: Path, slow_upstream: Upstream, databases: Databases
) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    deployment = deploy(tmp_path, "embedded", databases, KEYHOLE_QUERY_JOB_CONCURRENCY="1")
    try:
        keys = deployment.server.bootstrap("queues", "q@queues.test")
        client = api(deployment.server.url, keys.bearer)
        database = _query_connection(client.client)
        holding = _submit_query(client.client, database, "SELECT pg_sleep(30)")
        waiting = _submit_query(client.client, database, "SELECT 1 AS queued")
        assert _wait_query(client.client, holding, ("running",))["status"] == "running"

        connection = client.connection(slow_upstream.url)
        handle = client.accepted(connection, "/slow", query={"seconds": 0, "size": 10})
        assert client.wait(handle["jobId"], timeout=60)["status"] == "done"
        # The query slot is still held and the second query still waits for it.
        assert _query(client.client, holding)["status"] == "running"
        assert _query(client.client, waiting)["status"] == "created"

        assert client.client.delete(f"/api/queries/{holding}").status_code in (200, 202, 204)
        assert _wait_query(client.client, waiting, ("done",))["status"] == "done"
    finally:
        deployment.stop()


@pytest.mark.postgres
def test_a_worker_takes_only_its_queues(
    tmp_path: Path, slow_upstream: Upstream, databases: Databases
) -> None:
    deployment: Deployment = deploy(tmp_path, "procrastinate", databases, workers=0)
    try:
        deployment.start_worker("--queues", "queries,maintenance")
        keys = deployment.server.bootstrap("queues", "w@queues.test")
        client = api(deployment.server.url, keys.bearer)
        connection = client.connection(slow_upstream.url)
        handle = client.accepted(connection, "/slow", query={"seconds": 0, "size": 10})
        database = _query_connection(client.client)
        query = _submit_query(client.client, database, "SELECT 1 AS ran")
        assert _wait_query(client.client, query, ("done", "failed"))["status"] == "done"
        # The queries worker ran a query submitted after the proxy job, and left the job alone.
        assert client.job(handle["jobId"]).json()["data"]["status"] == "created"

        deployment.start_worker("--queues", "proxy")
        assert client.wait(handle["jobId"], timeout=60)["status"] == "done"
    finally:
        deployment.stop()


def test_unknown_queues_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "keyhole.cli", "worker", "--queues", "proxy,email"],
        env=server_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --queues: unknown queue email; choose from proxy, queries, maintenance"
    )
