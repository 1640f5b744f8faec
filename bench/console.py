"""Console benchmark: each page's server time with a full store, beside the REST listings.

Usage::

    .venv/bin/python bench/console.py [--connections 1000] [--audit-rows 100000] [--rounds 30]
                                      [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

One run:
1. starts ``keyhole serve`` (embedded defaults: SQLite, local blobs, in-process worker; or the
   given PostgreSQL store) in a fresh temporary KEYHOLE_HOME, bootstraps an organization and
   creates ``--connections`` HTTP connections through the REST API;
2. writes ``--audit-rows`` proxy-call records, spread over the last 24 hours across those
   connections, straight into the store (the worst case for the 24 h chart);
3. signs in to the console with the admin user's key and requests every page ``--rounds`` times,
   reading the server's own time from each answer's ``Server-Timing`` header (p50 and p95);
4. the baseline, in the same run: the REST API's ``GET /api/connections`` (every connection as
   JSON) and ``GET /api/proxy/calls`` (the first page of the organization's audit log), timed
   from the client, so a page can be compared with the JSON it is built from.

Exit code 0 when every page's p95 server time is within 100 ms, 1 otherwise, 2 when the bench
itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, text

from keyhole.audit.models import ProxyCall
from keyhole.store.database import Database

PYTHON = sys.executable
TARGET_MS = 100.0
_TIMING = re.compile(r"app;dur=([0-9.]+)")
_SIGN_IN_TOKEN = re.compile(r'name="sign_in_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, database_url: str | None) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="keyhole-bench-console-"))
        self.port = free_port()
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("KEYHOLE_")}
        self.env.update(KEYHOLE_HOME=str(self.home), KEYHOLE_LOG_LEVEL="WARNING")
        if database_url:
            self.env["KEYHOLE_DATABASE_URL"] = database_url
            self.env["KEYHOLE_MASTER_KEYS"] = "bench:" + "A" * 43 + "="
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return self.env.get("KEYHOLE_DATABASE_URL") or f"sqlite+aiosqlite:///{self.home / 'keyhole.db'}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [PYTHON, "-m", "keyhole.cli", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=self.home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("keyhole serve did not start")

    def bootstrap(self) -> dict[str, str]:
        result = subprocess.run(
            [PYTHON, "-m", "keyhole.cli", "bootstrap", "--org", "bench", "--user", "bench@bench.test"],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            check=True,
        )
        keys: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
        return keys

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
        shutil.rmtree(self.home, ignore_errors=True)


async def create_connections(url: str, key: str, count: int) -> list[str]:
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:

        async def one(number: int) -> str:
            async with limit:
                response = await client.post(
                    "/api/connections",
                    json={
                        "name": f"service-{number:04d}",
                        "type": "api",
                        "configuration": {
                            "url": f"https://service-{number:04d}.example.com",
                            "auth": {"type": "bearer", "token": f"secret-{number}"},
                        },
                        "validate": False,
                    },
                )
                response.raise_for_status()
                return str(response.json()["data"]["id"])

        return list(await asyncio.gather(*(one(number) for number in range(count))))


async def seed_audit(database_url: str, organization_id: str, connection_ids: list[str], rows: int) -> None:
    database = Database(database_url)
    now = datetime.now(UTC)
    outcomes = [("success", 200), ("success", 201), ("upstream_error", 404), ("upstream_error", 503)]
    try:
        for start in range(0, rows, 5000):
            batch = []
            for number in range(start, min(rows, start + 5000)):
                outcome, status = outcomes[number % len(outcomes)]
                batch.append(
                    {
                        "id": str(uuid.uuid4()),
                        "organization_id": organization_id,
                        "connection_id": connection_ids[number % len(connection_ids)],
                        "parent_connection_id": None,
                        "principal_id": "bench",
                        "dialect": "polytomic",
                        "method": "GET",
                        "path": f"/v1/items/{number}",
                        "upstream_status": status,
                        "latency_ms": 20 + number % 200,
                        "bytes_in": 512,
                        "bytes_out": 0,
                        "truncated": False,
                        "outcome": outcome,
                        "error_message": None,
                        "created_at": now - timedelta(seconds=(number * 86_000) / rows),
                    }
                )
            async with database.transaction() as session:
                await session.execute(insert(ProxyCall), batch)
        if not database.is_sqlite:  # what autovacuum would do after such a load
            async with database.transaction() as session:
                await session.execute(text("ANALYZE proxy_calls"))
    finally:
        await database.dispose()


def sign_in(url: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    form = client.get("/console/sign-in")
    token = _SIGN_IN_TOKEN.search(form.text)
    assert token is not None
    answer = client.post(
        "/console/sign-in",
        data={"sign_in_token": token.group(1), "api_key": key, "next": "/console/connections"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert answer.status_code == 303, answer.text
    return client


def measure(client: httpx.Client, path: str, rounds: int) -> tuple[float, float, float]:
    """(p50 server ms, p95 server ms, p50 wall ms); server time from Server-Timing."""
    server: list[float] = []
    wall: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path)
        wall.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
        found = _TIMING.search(response.headers.get("server-timing", ""))
        if found:
            server.append(float(found.group(1)))
    p95 = statistics.quantiles(server, n=20)[-1] if len(server) >= 2 else (server or [0.0])[0]
    return statistics.median(server) if server else 0.0, p95, statistics.median(wall)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--audit-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    arguments = parser.parse_args()
    server = Server(arguments.database_url)
    try:
        server.start()
        keys = server.bootstrap()
        started = time.perf_counter()
        connection_ids = asyncio.run(
            create_connections(server.url, keys["user_api_key"], arguments.connections)
        )
        asyncio.run(
            seed_audit(server.database_url, keys["organization_id"], connection_ids, arguments.audit_rows)
        )
        print(
            f"store: {arguments.connections} connections, {arguments.audit_rows} audit rows "
            f"(seeded in {time.perf_counter() - started:.1f} s)"
        )
        console = sign_in(server.url, keys["user_api_key"])
        rest = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {keys['user_api_key']}"}, timeout=60
        )
        calls = rest.get("/api/proxy/calls").json()["data"]
        call_id = calls[0]["proxyCallId"] if calls else "none"
        first = connection_ids[len(connection_ids) // 2]
        pages = [
            "/console/connections",
            "/console/connections?page=2",
            f"/console/connections/{first}",
            "/console/connections/new?type=api",
            f"/console/playground?connection={first}",
            "/console/activity",
            f"/console/activity?connection={first}",
            f"/console/activity/{call_id}",
            "/console/queries",
            "/console/jobs",
            "/console/keys",
            "/console/users",
        ]
        for path in pages:  # warm every cache the first request fills
            measure(console, path, 2)
        print(f"{'page':48} {'server p50':>11} {'server p95':>11} {'wall p50':>9}")
        worst = 0.0
        for path in pages:
            p50, p95, wall = measure(console, path, arguments.rounds)
            worst = max(worst, p95)
            print(f"{path[:48]:48} {p50:9.1f}ms {p95:9.1f}ms {wall:7.1f}ms")
        print("baseline (REST, client-side wall time):")
        for path in ("/api/connections", "/api/proxy/calls"):
            wall = measure_rest(rest, path, arguments.rounds)
            print(f"{path:48} {'':11} {'':11} {wall:7.1f}ms")
        verdict = "PASS" if worst <= TARGET_MS else "FAIL"
        print(f"worst page p95 server time {worst:.1f} ms (target ≤ {TARGET_MS:.0f} ms): {verdict}")
        return 0 if worst <= TARGET_MS else 1
    except Exception as error:  # the bench itself failed: say why, exit 2
        print(f"bench failed: {error}", file=sys.stderr)
        return 2
    finally:
        server.stop()


def measure_rest(client: httpx.Client, path: str, rounds: int) -> float:
    """p50 wall ms of a REST listing."""
    wall: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        wall.append((time.perf_counter() - started) * 1000)
    return statistics.median(wall)


if __name__ == "__main__":
    sys.exit(main())
