"""Helpers shared by the jobs, blobs and idempotency suites: a subprocess upstream, fresh
PostgreSQL databases, `keyhole worker` processes and a small client for the async proxy."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from conftest import PYTHON, KeyholeServer, free_port, require_service, server_env, stop_process, wait_for

HERE = Path(__file__).resolve().parent
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
TOKEN = "tok_ASYNC_Q8wN2kR5vL7pX3zM"
TERMINAL = ("done", "failed")


# -- the upstream ----------------------------------------------------------------------------


@dataclass
class Upstream:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hits(self, prefix: str) -> int:
        return int(httpx.get(f"{self.url}/_hits", params={"prefix": prefix}).json()["hits"])


@contextmanager
def upstream() -> Iterator[Upstream]:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, str(HERE / "upstream_server.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/_hits", process)
        yield Upstream(process, port)
    finally:
        stop_process(process)


# -- PostgreSQL ------------------------------------------------------------------------------


class Databases:
    """Fresh PostgreSQL databases, all dropped at the end."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def create(self) -> str:
        require_service("PostgreSQL", "127.0.0.1", 5432)
        name = f"keyhole_jobs_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

    def drop_all(self) -> None:
        for name in self.names:
            asyncio.run(_drop(name))


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _drop(name: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await connection.close()


async def _fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(database_url, query, *args))


# -- deployments -----------------------------------------------------------------------------


@dataclass
class Deployment:
    """A `keyhole serve` and, for the distributed engine, `keyhole worker` processes."""

    engine: str
    server: KeyholeServer
    database_url: str | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.server.home / f"worker-{len(self.workers)}.log").open("ab")
        process = subprocess.Popen(
            [PYTHON, "-m", "keyhole.cli", "worker", *args],
            env=self.server.env,
            cwd=self.server.home,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        return process

    def stop(self) -> None:
        for process in self.workers:
            stop_process(process)
        self.server.stop()

    def worker_logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.server.home.glob("worker-*.log"))
        )


def deploy(home: Path, engine: str, databases: Databases, *, workers: int = 1, **env: str) -> Deployment:
    settings = {"KEYHOLE_JOB_SWEEP_SECONDS": "1", **env}
    database_url = None
    if engine == "procrastinate":
        database_url = databases.create()
        settings.update(KEYHOLE_JOB_ENGINE="procrastinate", KEYHOLE_DATABASE_URL=database_url)
    server = KeyholeServer(home, server_env(home, **settings)).start()
    deployment = Deployment(engine, server, database_url)
    if engine == "procrastinate":
        for _ in range(workers):
            deployment.start_worker()
    return deployment


def kill9(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


# -- the API ---------------------------------------------------------------------------------


@dataclass
class AsyncApi:
    client: httpx.Client

    def connection(self, url: str, *, proxy: dict[str, Any] | None = None, token: str = TOKEN) -> str:
        configuration: dict[str, Any] = {"url": url, "auth": {"type": "bearer", "token": token}}
        if proxy is not None:
            configuration["proxy"] = proxy
        response = self.client.post(
            "/api/connections",
            json={
                "name": f"async-{uuid.uuid4().hex[:8]}",
                "type": "api",
                "configuration": configuration,
                "validate": False,
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["data"]["id"])

    def submit(self, connection_id: str, path: str, **request: Any) -> httpx.Response:
        headers = request.pop("idempotency_headers", None)
        return self.client.post(
            f"/api/connections/{connection_id}/proxy",
            json={
                "request": {"method": request.pop("method", "GET"), "path": path, **request},
                "async": True,
            },
            headers=headers,
        )

    def accepted(self, connection_id: str, path: str, **request: Any) -> dict[str, Any]:
        response = self.submit(connection_id, path, **request)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        assert data["status"] == 202, data
        return data

    def job(self, job_id: str, job_type: str = "connectionproxy") -> httpx.Response:
        return self.client.get(f"/api/jobs/{job_type}/{job_id}")

    def wait(self, job_id: str, *, until: tuple[str, ...] = TERMINAL, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            response = self.job(job_id)
            assert response.status_code == 200, response.text
            data: dict[str, Any] = response.json()["data"]
            if data["status"] in until:
                return data
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {data['status']} after {timeout}s: {data}")
            time.sleep(0.1)


def api(base_url: str, headers: dict[str, str]) -> AsyncApi:
    return AsyncApi(httpx.Client(base_url=base_url, headers=headers, timeout=120))


def status_kib(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{name} missing from /proc/{pid}/status")
