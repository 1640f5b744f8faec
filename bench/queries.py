"""Query-runner benchmark: Keyhole end to end against a raw asyncpg fetch of the same query.

Usage::

    .venv/bin/python bench/queries.py [--rows 1000000] [--big-rows 3000000] [--page-rows 10000]
                                      [--postgres postgresql://postgres@127.0.0.1:5432/test]

One run:
1. starts ``keyhole serve`` (embedded worker, SQLite metadata, local blobs) in a fresh
   temporary KEYHOLE_HOME on a free port, bootstraps an organization and creates a PostgreSQL
   connection with ``max_rows``/``max_bytes`` raised above the sizes measured;
2. the floor: ``asyncpg.fetch()`` of the query (8 mixed-type columns from generate_series),
   all rows decoded into Python objects, in this process;
3. Keyhole: ``POST /api/connections/{id}/query`` → poll ``GET /api/queries/{id}`` until done →
   read every page by following ``links.next``, each page parsed into Python objects with
   orjson (so both sides end with the rows as objects); rows/s, and the ratio Keyhole / floor
   (target ≥ 0.5). Floor and Keyhole runs alternate (``--repeat``, 3) and the best of each is
   kept, so load from other processes hits both alike;
4. the peak VmRSS of the ``keyhole serve`` process (which runs the worker) sampled every 10 ms
   during a whole 1M-row run and a whole 3M-row run (submit, execution, every page read):
   it should not grow with the row count.

Exit code 0 when the ratio reaches 0.5 and the 3M peak is within 64 MiB of the 1M peak,
1 otherwise, 2 when the bench itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MIB = 1024 * 1024

QUERY = """SELECT g AS id, g * 1.5::float8 AS score, (g % 100000)::numeric(12,2) AS amount,
 'name-' || g AS name, timestamptz '2024-01-01' + g * interval '1 second' AS created_at,
 (g % 2 = 0) AS flag, date '2024-01-01' + (g % 365) AS day, md5(g::text)::uuid AS uid
 FROM generate_series(1, {rows}) g"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing")


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Keyhole:
    def __init__(self, page_rows: int) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="keyhole-bench-queries-"))
        self.port = free_port()
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("KEYHOLE_")}
        self.env.update(
            KEYHOLE_HOME=str(self.home),
            KEYHOLE_EGRESS_ALLOW="127.0.0.0/8",
            KEYHOLE_QUERY_PAGE_ROWS=str(page_rows),
            KEYHOLE_LOG_LEVEL="WARNING",
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.home / "server.log").open("ab")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "keyhole.cli", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("keyhole serve exited; see " + str(self.home / "server.log"))
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("keyhole serve did not come up")

    def bootstrap(self) -> dict[str, str]:
        out = subprocess.run(
            [PYTHON, "-m", "keyhole.cli", "bootstrap", "--org", "bench", "--user", "bench@bench.test"],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def _next_link(body: bytes) -> str | None:
    """``links.next`` read from the page's tail (the rows before it need not be parsed first)."""
    links = orjson.loads(body[body.rindex(b',"links":') + len(b',"links":') : -1])
    return links["next"]  # type: ignore[no-any-return]


async def _keyhole_run(base_url: str, headers: dict[str, str], connection_id: str, rows: int) -> float:
    """Submit, poll until done (10 ms doubling to 100 ms), then read every page: page k+1 is
    requested before page k is parsed into Python objects, as a client streaming pages would."""
    async with aiohttp.ClientSession(base_url=base_url, headers=headers) as http:
        started = time.perf_counter()
        async with http.post(
            f"/api/connections/{connection_id}/query", params={"query": QUERY.format(rows=rows)}, json={}
        ) as response:
            response.raise_for_status()
            query_id = (await response.json())["data"]["id"]
        pause = 0.01
        while True:
            async with http.get(f"/api/queries/{query_id}") as response:
                page = orjson.loads(await response.read())
            status = page["data"]["status"]
            if status == "done":
                if os.environ.get("BENCH_DEBUG"):
                    print(f"  done after {time.perf_counter() - started:.2f}s", file=sys.stderr)
                break
            if status == "failed":
                raise RuntimeError(f"query failed: {page['data']['error']}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

        async def fetch(link: str) -> bytes:
            async with http.get(link) as response:
                response.raise_for_status()
                return await response.read()

        count = len(page["data"]["results"])
        link = page["links"]["next"]
        ahead = asyncio.ensure_future(fetch(link)) if link else None
        while ahead is not None:
            body = await ahead
            link = _next_link(body)
            ahead = asyncio.ensure_future(fetch(link)) if link else None
            await asyncio.sleep(0)  # the next request goes out before this page is parsed
            count += len(orjson.loads(body)["data"]["results"])
        elapsed = time.perf_counter() - started
    if count != rows:
        raise RuntimeError(f"read {count} rows, expected {rows}")
    return elapsed


def keyhole_run(base_url: str, headers: dict[str, str], connection_id: str, rows: int) -> float:
    """Seconds from submit to the last page read and parsed."""
    return asyncio.run(_keyhole_run(base_url, headers, connection_id, rows))


async def floor_run(dsn: str, rows: int) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        records = await connection.fetch(QUERY.format(rows=rows))
        elapsed = time.perf_counter() - started
        if len(records) != rows:
            raise RuntimeError("short fetch")
        del records
        return elapsed
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=3_000_000)
    parser.add_argument("--page-rows", type=int, default=10_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (best kept)")
    args = parser.parse_args()

    keyhole = Keyhole(args.page_rows)
    try:
        keyhole.start()
        keys = keyhole.bootstrap()
        assert keyhole.process is not None
        pid = keyhole.process.pid
        headers = {"Authorization": f"Bearer {keys['user_api_key']}"}
        with httpx.Client(base_url=keyhole.url, headers=headers, timeout=600) as http:
            created = http.post(
                "/api/connections",
                json={
                    "name": "bench",
                    "type": "postgresql",
                    "configuration": {
                        "hostname": "127.0.0.1",
                        "port": 5432,
                        "database": "test",
                        "username": "postgres",
                        "ssl_mode": "disable",
                        "query": {"max_rows": 100_000_000, "max_bytes": 4_294_967_296},
                    },
                },
            )
            created.raise_for_status()
            connection_id = created.json()["data"]["id"]

            keyhole_run(keyhole.url, headers, connection_id, 100_000)  # warm-up: pool, codecs, pages
            load_before = os.getloadavg()[0]
            floors, timings = [], []
            for _ in range(args.repeat):  # interleaved, best of each: other load hits both alike
                floors.append(asyncio.run(floor_run(args.postgres, args.rows)))
                timings.append(keyhole_run(keyhole.url, headers, connection_id, args.rows))
            floor, best = min(floors), min(timings)
            load_after = os.getloadavg()[0]

            idle = rss_kib(pid)
            with Sampler(pid) as small:
                keyhole_run(keyhole.url, headers, connection_id, args.rows)
            with Sampler(pid) as big:
                big_elapsed = keyhole_run(keyhole.url, headers, connection_id, args.big_rows)
    except Exception as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2
    finally:
        keyhole.stop()

    floor_rate = args.rows / floor
    keyhole_rate = args.rows / best
    ratio = keyhole_rate / floor_rate
    print(
        f"query: 8 columns (int8, float8, numeric, text, timestamptz, bool, date, uuid), {args.rows:,} rows"
    )
    print(f"best of {args.repeat}; machine load average {load_before:.1f} before, {load_after:.1f} after")
    print(f"{'variant':<38}{'seconds':>10}{'rows/s':>14}")
    print(f"{'asyncpg fetch (floor)':<38}{floor:>10.2f}{floor_rate:>14,.0f}")
    print(f"{'keyhole submit→done→all pages (HTTP)':<38}{best:>10.2f}{keyhole_rate:>14,.0f}")
    big_label = f"keyhole {args.big_rows:,} rows"
    print(f"{big_label:<38}{big_elapsed:>10.2f}{args.big_rows / big_elapsed:>14,.0f}")
    print(f"ratio keyhole / floor: {ratio:.2f} (target >= 0.5) {'PASS' if ratio >= 0.5 else 'FAIL'}")
    print(f"keyhole RSS idle after warm-up: {idle / 1024:.0f} MiB")
    print(f"keyhole peak RSS, {args.rows:,} rows: {small.peak / 1024:.0f} MiB")
    print(f"keyhole peak RSS, {args.big_rows:,} rows: {big.peak / 1024:.0f} MiB")
    flat = big.peak - small.peak < 64 * 1024
    print(f"peak RSS independent of row count: {'PASS' if flat else 'FAIL'}")
    return 0 if ratio >= 0.5 and flat else 1


if __name__ == "__main__":
    sys.exit(main())
