"""Query-runner benchmark: Keyhole end to end against each database's own driver fetching the
same rows, for the pages and for a whole-result Parquet export.

Usage::

    .venv/bin/python bench/queries.py [--rows 1000000] [--big-rows 5000000] [--repeat 3]
                                      [--postgres postgresql://postgres@127.0.0.1:5432/test]
                                      [--mysql-rows 300000] [--duckdb-rows 1000000]

One run:
1. starts ``keyhole serve`` (embedded worker, SQLite metadata, local blobs, default pages of
   10,000 rows / 4 MiB) in a fresh temporary KEYHOLE_HOME on a free port, and a second one with
   ``KEYHOLE_QUERY_COLUMNAR=false`` (the row path, for comparison), bootstraps an organization
   and creates PostgreSQL, MariaDB and DuckDB connections with ``max_rows``/``max_bytes`` raised
   above the sizes measured;
2. PostgreSQL, 8 mixed-type columns from generate_series:
   - the floor: ``asyncpg.fetch()`` of the query, every row decoded into Python objects;
   - pages: ``POST /api/connections/{id}/query`` → poll ``GET /api/queries/{id}`` until done →
     every page read by following ``links.next``, each parsed into Python objects with orjson;
   - Parquet: submit → done → ``GET /api/queries/{id}/export?format=parquet`` read whole and
     loaded into an Arrow table (``pyarrow.parquet.read_table``);
   floor and Keyhole runs alternate (``--repeat``), best of each kept, so other load hits all
   alike; target: both Keyhole ratios (floor seconds / Keyhole seconds) >= 1.0;
3. the peak VmRSS of the columnar server (it runs the worker), sampled every 10 ms over a whole
   ``--rows`` run and a whole ``--big-rows`` run (pages, then the Parquet export): target, the
   big run within 32 MiB of the small one;
4. MariaDB (``aiomysql`` fetch, the driver Keyhole uses, against the pages) and DuckDB
   (``duckdb`` ``fetchall`` in this process, against the pages): ratios reported.

Exit code 0 when the targets are met, 1 otherwise, 2 when the bench itself failed.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aiomysql
import asyncpg
import duckdb
import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MIB = 1024 * 1024

MYSQL_QUERY = """SELECT seq AS id, seq * 1.5 AS score, CAST(seq % 100000 AS DECIMAL(12,2)) AS amount,
 CONCAT('name-', seq) AS name, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND AS created_at,
 seq % 2 = 0 AS flag, DATE '2024-01-01' + INTERVAL (seq % 365) DAY AS day, MD5(seq) AS uid
 FROM seq_1_to_{rows}"""
DUCKDB_FILE = "bench.duckdb"
DUCKDB_TABLE = """CREATE TABLE t AS SELECT range AS id, range * 1.5 AS score, 'name-' || range AS name,
 TIMESTAMP '2024-01-01' + to_seconds(range) AS created_at, range % 2 = 0 AS flag,
 DATE '2024-01-01' + (range % 365)::INTEGER AS day FROM range({rows})"""
DUCKDB_QUERY = "SELECT * FROM t"
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
    def __init__(self, page_rows: int, **env: str) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="keyhole-bench-queries-"))
        self.port = free_port()
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("KEYHOLE_")}
        self.env.update(
            KEYHOLE_HOME=str(self.home),
            KEYHOLE_EGRESS_ALLOW="127.0.0.0/8",
            KEYHOLE_QUERY_PAGE_ROWS=str(page_rows),
            KEYHOLE_LOG_LEVEL="WARNING",
            **env,
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


async def _submit_and_wait(http: aiohttp.ClientSession, connection_id: str, sql: str) -> dict[str, Any]:
    """Submit, then poll (10 ms doubling to 100 ms) until done; the first page's answer."""
    async with http.post(
        f"/api/connections/{connection_id}/query", params={"query": sql}, json={}
    ) as response:
        response.raise_for_status()
        query_id = (await response.json())["data"]["id"]
    pause = 0.01
    while True:
        async with http.get(f"/api/queries/{query_id}") as response:
            page: dict[str, Any] = orjson.loads(await response.read())
        status = page["data"]["status"]
        if status == "done":
            return page
        if status == "failed":
            raise RuntimeError(f"query failed: {page['data']['error']}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)


async def _pages(http: aiohttp.ClientSession, connection_id: str, sql: str) -> int:
    """Every page read: page k+1 is requested before page k is parsed, as a streaming client would."""
    page = await _submit_and_wait(http, connection_id, sql)

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
    return count


async def _parquet(http: aiohttp.ClientSession, connection_id: str, sql: str) -> int:
    """The whole result as a Parquet file, loaded into an Arrow table."""
    page = await _submit_and_wait(http, connection_id, sql)
    async with http.get(
        f"/api/queries/{page['data']['id']}/export", params={"format": "parquet"}
    ) as response:
        response.raise_for_status()
        body = await response.read()
    return int(pq.read_table(pa.BufferReader(body)).num_rows)


def keyhole_run(
    base_url: str, headers: dict[str, str], connection_id: str, sql: str, rows: int, how: str
) -> float:
    """Seconds from submit to the last row read (``how``: pages or parquet)."""

    async def run() -> float:
        async with aiohttp.ClientSession(base_url=base_url, headers=headers) as http:
            started = time.perf_counter()
            count = await (_pages if how == "pages" else _parquet)(http, connection_id, sql)
            elapsed = time.perf_counter() - started
        if count != rows:
            raise RuntimeError(f"read {count} rows, expected {rows}")
        return elapsed

    return asyncio.run(run())


async def postgres_floor(dsn: str, sql: str, rows: int) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        records = await connection.fetch(sql)
        elapsed = time.perf_counter() - started
        if len(records) != rows:
            raise RuntimeError("short fetch")
        del records
        return elapsed
    finally:
        await connection.close()


async def mysql_floor(sql: str, rows: int) -> float:
    connection = await aiomysql.connect(host="127.0.0.1", port=3306, user="root", password="", db="test")
    try:
        started = time.perf_counter()
        async with connection.cursor() as cursor:
            await cursor.execute(sql)
            fetched = await cursor.fetchall()
        elapsed = time.perf_counter() - started
        if len(fetched) != rows:
            raise RuntimeError("short fetch")
        return elapsed
    finally:
        connection.close()


def duckdb_floor(path: Path, sql: str, rows: int) -> float:
    with duckdb.connect(str(path), read_only=True) as connection:
        started = time.perf_counter()
        fetched = connection.execute(sql).fetchall()
        elapsed = time.perf_counter() - started
    if len(fetched) != rows:
        raise RuntimeError("short fetch")
    return elapsed


def _connection(http: httpx.Client, name: str, type_id: str, configuration: dict[str, Any]) -> str:
    limits = {
        "query": {"max_rows": 100_000_000, "max_bytes": 4_294_967_296, "statement_timeout_ms": 3_600_000}
    }
    created = http.post(
        "/api/connections", json={"name": name, "type": type_id, "configuration": {**configuration, **limits}}
    )
    created.raise_for_status()
    return str(created.json()["data"]["id"])


POSTGRES_CONNECTION = {
    "hostname": "127.0.0.1",
    "port": 5432,
    "database": "test",
    "username": "postgres",
    "ssl_mode": "disable",
}
MYSQL_CONNECTION = {
    "hostname": "127.0.0.1",
    "port": 3306,
    "database": "test",
    "username": "root",
    "ssl_mode": "disable",
}


@dataclass
class Server:
    keyhole: Keyhole
    headers: dict[str, str]
    postgres: str
    mysql: str
    duckdb: str

    def run(self, which: str, sql: str, rows: int, how: str = "pages") -> float:
        connection_id = {"postgres": self.postgres, "mysql": self.mysql, "duckdb": self.duckdb}[which]
        return keyhole_run(self.keyhole.url, self.headers, connection_id, sql, rows, how)


def _server(page_rows: int, sql_root: Path, **env: str) -> Server:
    keyhole = Keyhole(page_rows, KEYHOLE_SQL_FILE_ROOT=str(sql_root), **env)
    try:
        keyhole.start()
        keys = keyhole.bootstrap()
        headers = {"Authorization": f"Bearer {keys['user_api_key']}"}
        with httpx.Client(base_url=keyhole.url, headers=headers, timeout=600) as http:
            return Server(
                keyhole,
                headers,
                _connection(http, "pg", "postgresql", POSTGRES_CONNECTION),
                _connection(http, "maria", "mysql", MYSQL_CONNECTION),
                _connection(http, "duck", "duckdb", {"path": DUCKDB_FILE}),
            )
    except BaseException:
        keyhole.stop()
        raise


def _best(runs: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """Each variant ``repeat`` times, interleaved; the best of each."""
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            timings[name].append(run())
    return {name: min(values) for name, values in timings.items()}


def _line(label: str, seconds: float, rows: int, floor: float | None = None) -> str:
    ratio = f"{floor / seconds:>8.2f}" if floor is not None else f"{'':>8}"
    return f"{label:<46}{seconds:>9.2f}{rows / seconds:>13,.0f}{ratio}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument("--mysql-rows", type=int, default=300_000)
    parser.add_argument("--duckdb-rows", type=int, default=1_000_000)
    parser.add_argument("--page-rows", type=int, default=10_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (best kept)")
    args = parser.parse_args()

    sql_root = Path(tempfile.mkdtemp(prefix="keyhole-bench-sql-"))
    with duckdb.connect(str(sql_root / DUCKDB_FILE)) as duck:
        duck.execute(DUCKDB_TABLE.format(rows=max(args.duckdb_rows, 1)))
    servers: list[Server] = []
    try:
        columnar = _server(args.page_rows, sql_root)
        servers.append(columnar)
        rows_only = _server(args.page_rows, sql_root, KEYHOLE_QUERY_COLUMNAR="false")
        servers.append(rows_only)
        for server in servers:  # warm-up: pools, codecs, drivers, pages, exports
            server.run("postgres", QUERY.format(rows=100_000), 100_000)
            server.run("postgres", QUERY.format(rows=100_000), 100_000, "parquet")
        pg_sql = QUERY.format(rows=args.rows)
        load_before = os.getloadavg()[0]
        pg = _best(
            {
                "floor": lambda: asyncio.run(postgres_floor(args.postgres, pg_sql, args.rows)),
                "pages": lambda: columnar.run("postgres", pg_sql, args.rows),
                "parquet": lambda: columnar.run("postgres", pg_sql, args.rows, "parquet"),
                "rows": lambda: rows_only.run("postgres", pg_sql, args.rows),
            },
            args.repeat,
        )
        load_after = os.getloadavg()[0]
        my_sql = MYSQL_QUERY.format(rows=args.mysql_rows)
        mysql = _best(
            {
                "floor": lambda: asyncio.run(mysql_floor(my_sql, args.mysql_rows)),
                "pages": lambda: columnar.run("mysql", my_sql, args.mysql_rows),
            },
            args.repeat,
        )
        duck_sql = DUCKDB_QUERY
        duckdb_runs = _best(
            {
                "floor": lambda: duckdb_floor(sql_root / DUCKDB_FILE, duck_sql, args.duckdb_rows),
                "pages": lambda: columnar.run("duckdb", duck_sql, args.duckdb_rows),
                "parquet": lambda: columnar.run("duckdb", duck_sql, args.duckdb_rows, "parquet"),
            },
            args.repeat,
        )
        assert columnar.keyhole.process is not None
        pid = columnar.keyhole.process.pid
        idle = rss_kib(pid)
        peaks = {}
        for rows in (args.rows, args.big_rows):
            with Sampler(pid) as sampled:
                columnar.run("postgres", QUERY.format(rows=rows), rows)
                columnar.run("postgres", QUERY.format(rows=rows), rows, "parquet")
            peaks[rows] = sampled.peak
    except Exception as error:
        print(f"bench failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    finally:
        for server in servers:
            server.keyhole.stop()
        shutil.rmtree(sql_root, ignore_errors=True)

    print(
        f"best of {args.repeat}; machine load average {load_before:.1f} before, "
        f"{load_after:.1f} after (PostgreSQL)"
    )
    print(f"{'variant':<46}{'seconds':>9}{'rows/s':>13}{'ratio':>8}")
    print(
        "PostgreSQL: 8 columns (int8, float8, numeric, text, timestamptz, bool, date, uuid), "
        f"{args.rows:,} rows"
    )
    print(_line("  asyncpg fetch (floor)", pg["floor"], args.rows))
    print(_line("  keyhole submit→done→all pages", pg["pages"], args.rows, pg["floor"]))
    print(_line("  keyhole submit→done→Parquet export → table", pg["parquet"], args.rows, pg["floor"]))
    print(_line("  keyhole pages, row path (columnar off)", pg["rows"], args.rows, pg["floor"]))
    print(f"MariaDB: 8 columns, {args.mysql_rows:,} rows")
    print(_line("  aiomysql fetch (floor)", mysql["floor"], args.mysql_rows))
    print(_line("  keyhole submit→done→all pages", mysql["pages"], args.mysql_rows, mysql["floor"]))
    print(f"DuckDB: 6 columns, {args.duckdb_rows:,} rows")
    print(_line("  duckdb fetchall (floor)", duckdb_runs["floor"], args.duckdb_rows))
    print(
        _line("  keyhole submit→done→all pages", duckdb_runs["pages"], args.duckdb_rows, duckdb_runs["floor"])
    )
    print(
        _line(
            "  keyhole submit→done→Parquet export → table",
            duckdb_runs["parquet"],
            args.duckdb_rows,
            duckdb_runs["floor"],
        )
    )
    print(f"keyhole RSS idle after warm-up: {idle / 1024:.0f} MiB")
    for rows, peak in peaks.items():
        print(f"keyhole peak RSS over {rows:,} rows (pages, then Parquet): {peak / 1024:.0f} MiB")
    pages_ok = pg["floor"] / pg["pages"] >= 1.0
    parquet_ok = pg["floor"] / pg["parquet"] >= 1.0
    flat = peaks[args.big_rows] - peaks[args.rows] <= 32 * 1024
    print(f"PostgreSQL pages ratio >= 1.0: {'PASS' if pages_ok else 'FAIL'}")
    print(f"PostgreSQL Parquet ratio >= 1.0: {'PASS' if parquet_ok else 'FAIL'}")
    print(
        f"peak RSS within 32 MiB from {args.rows:,} to {args.big_rows:,} rows: {'PASS' if flat else 'FAIL'}"
    )
    return 0 if pages_ok and parquet_ok and flat else 1


if __name__ == "__main__":
    sys.exit(main())
