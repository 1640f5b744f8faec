"""A worker killed with SIGKILL mid-job never leaves its job stuck in `running`: once the
lease expires the sweep retries it (attempts left) or fails it with a clear reason."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from conftest import KeyholeServer, server_env

from .support import AsyncApi, Databases, Deployment, Upstream, api, deploy, fetch, kill9

RECOVERY = {"KEYHOLE_JOB_LEASE_SECONDS": "3", "KEYHOLE_JOB_SWEEP_SECONDS": "1"}
SLOW = {"seconds": 6, "size": 6000}


def _job_row(home: Path, job_id: str) -> tuple[str, int, str | None]:
    with sqlite3.connect(home / "keyhole.db") as db:
        row = db.execute("SELECT status, attempts, worker_id FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row[0], row[1], row[2]


def _start_slow_job(client: AsyncApi, upstream: Upstream, tag: str) -> tuple[str, str]:
    connection = client.connection(upstream.url)
    handle = client.accepted(connection, "/slow", query={**SLOW, "tag": tag})
    client.wait(handle["jobId"], until=("running", "done", "failed"), timeout=30)
    return connection, handle["jobId"]


@pytest.mark.parametrize("max_attempts", [3, 1])
def test_embedded_server_killed_mid_job(tmp_path: Path, slow_upstream: Upstream, max_attempts: int) -> None:
    env = server_env(tmp_path, **RECOVERY, KEYHOLE_JOB_MAX_ATTEMPTS=str(max_attempts))
    first = KeyholeServer(tmp_path, env).start()
    second: KeyholeServer | None = None
    try:
        keys = first.bootstrap("recovery", "r@recovery.test")
        client = api(first.url, keys.bearer)
        tag = f"embedded-{max_attempts}"
        connection, job_id = _start_slow_job(client, slow_upstream, tag)
        assert first.process is not None
        assert _job_row(tmp_path, job_id)[0] == "running"
        kill9(first.process)
        first.process = None

        second = KeyholeServer(tmp_path, env).start()  # the same home: same store, keys and blobs
        client = api(second.url, keys.bearer)
        job = client.wait(job_id, timeout=120)
        status, attempts, _ = _job_row(tmp_path, job_id)
        if max_attempts == 1:
            assert (job["status"], job["result"]) == ("failed", None)
            assert job["error"] == "worker stopped responding during attempt 1 of 1"
            assert (status, attempts) == ("failed", 1)
            calls = _calls(client, connection)
            assert [call["outcome"] for call in calls] == ["worker_lost"]
        else:
            assert job["status"] == "done", job
            assert (status, attempts) == ("done", 2)
            assert httpx.get(job["result"]["bodyDownloadUrl"]).content == b"s" * SLOW["size"]
            assert slow_upstream.hits(f"/slow?seconds=6&size=6000&tag={tag}") == 2
            assert [call["outcome"] for call in _calls(client, connection)] == ["ok"]
    finally:
        first.stop()
        if second is not None:
            second.stop()


def _calls(client: AsyncApi, connection: str) -> list[dict[str, object]]:
    deadline = time.monotonic() + 30
    while True:
        calls: list[dict[str, object]] = client.client.get(
            f"/api/connections/{connection}/proxy/calls"
        ).json()["data"]
        if calls or time.monotonic() > deadline:
            return calls
        time.sleep(0.2)


def test_distributed_worker_killed_mid_job(
    tmp_path: Path, slow_upstream: Upstream, databases: Databases
) -> None:
    deployment: Deployment = deploy(tmp_path, "procrastinate", databases, workers=2, **RECOVERY)
    try:
        assert deployment.database_url is not None
        keys = deployment.server.bootstrap("recovery", "r@recovery.test")
        client = api(deployment.server.url, keys.bearer)
        connection, job_id = _start_slow_job(client, slow_upstream, "distributed")
        [row] = fetch(deployment.database_url, "SELECT status, worker_id FROM jobs WHERE id = $1", job_id)
        assert row["status"] == "running"
        owner_pid = int(row["worker_id"].split(":")[1])
        [victim] = [process for process in deployment.workers if process.pid == owner_pid]
        [survivor] = [process for process in deployment.workers if process.pid != owner_pid]
        kill9(victim)

        job = client.wait(job_id, timeout=120)
        assert job["status"] == "done", (job, deployment.worker_logs()[-4000:])
        assert httpx.get(job["result"]["bodyDownloadUrl"]).content == b"s" * SLOW["size"]
        [row] = fetch(deployment.database_url, "SELECT attempts, worker_id FROM jobs WHERE id = $1", job_id)
        assert row["attempts"] == 2
        assert int(row["worker_id"].split(":")[1]) == survivor.pid
        assert [call["outcome"] for call in _calls(client, connection)] == ["ok"]
    finally:
        deployment.stop()
