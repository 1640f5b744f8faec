"""A 2,000,000-row result streams through the embedded worker in bounded memory.

The worker is the embedded one inside ``keyhole serve``, so the VmRSS of that process is read
while the query runs and while every page is read back over HTTP. The result is about 200 MB
of JSON; the process may grow by a small fraction of that, never by the result itself.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from conftest import require_service

from .support import POSTGRES, sdk, status_kib, wait

MIB = 1024 * 1024
ROWS = 2_000_000
SQL = "SELECT g AS id, md5(g::text) AS h, g * 0.5 AS x, now() AS t FROM generate_series(1, {rows}) g"
BOUND = 64 * MIB


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))
            time.sleep(0.01)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _read_all(http: httpx.Client, query_id: str) -> int:
    """Every page over HTTP (streamed), returning the number of rows."""
    link: str | None = f"/api/queries/{query_id}"
    rows = 0
    while link:
        with http.stream("GET", link) as response:
            assert response.status_code == 200
            body = orjson.loads(b"".join(response.iter_bytes()))
        rows += len(body["data"]["results"])
        link = body["links"]["next"]
    return rows


def _reset_peak(pid: int) -> bool:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    return status_kib(pid, "VmHWM") - status_kib(pid, "VmRSS") < 1024


def test_two_million_rows_in_bounded_memory(make_server: Callable[..., Any]) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    server = make_server()
    assert server.process is not None
    pid = server.process.pid
    keys = server.bootstrap("mem-org", "mem@mem.test")
    client = sdk(server, keys.user_api_key)
    connection_id = client.connections.create(
        name="pg",
        type="postgresql",
        configuration={**POSTGRES, "query": {"max_rows": 3_000_000, "max_bytes": 4_294_967_296}},
    ).data.id
    with httpx.Client(base_url=server.url, headers=keys.bearer, timeout=120) as http:
        # warm every code path (pool, codecs, pages, reads) first
        warm = client.query_runner.run_query(connection_id=connection_id, query=SQL.format(rows=200_000))
        assert wait(client, warm.data.id).data.status == "done"
        assert _read_all(http, warm.data.id) == 200_000

        before = status_kib(pid, "VmRSS")
        peak_known = _reset_peak(pid)
        with Sampler(pid) as sampler:
            big = client.query_runner.run_query(connection_id=connection_id, query=SQL.format(rows=ROWS))
            done = wait(client, big.data.id, timeout=600)
            assert done.data.status == "done", done.data.error
            assert done.data.count == ROWS
            assert _read_all(http, big.data.id) == ROWS
        grown = (sampler.peak - before) * 1024
        print(f"rss before {before} KiB, peak {sampler.peak} KiB, grown {grown // MIB} MiB")
        assert grown < BOUND, f"RSS grew by {grown // MIB} MiB streaming {ROWS} rows"
        if peak_known:
            high_water = (status_kib(pid, "VmHWM") - before) * 1024
            assert high_water < BOUND, f"peak RSS grew by {high_water // MIB} MiB"
        stored = sum(
            path.stat().st_size for path in (server.home / "blobs" / "queries" / big.data.id).rglob("*")
        )
        assert stored > 3 * BOUND, f"the result is only {stored // MIB} MiB: the test proves nothing"
