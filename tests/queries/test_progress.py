"""A query's progress on the wire: ``GET /api/queries/{id}`` counts the rows and bytes stored so far
and the seconds run while the query runs, and the totals once it is done; a queued or failed
query has none."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import KeyholeServer, Keys
from keyhole.api.console.queries import shown_query
from keyhole.queries import QueryView
from mcp_server.support import stateless_call

from .conftest import PAGE_ROWS

# Rows come slowly (a pause per row) and wide (8 kB each), so that the database's batches and the
# pages of PAGE_ROWS are stored one after another over several seconds while the query runs.
SLOW_ROWS = 3 * PAGE_ROWS
_WIDE_SLOW = "repeat('x', 8000) || pg_sleep(0.001)::text AS filler"
SLOW = f"SELECT g, {_WIDE_SLOW} FROM generate_series(1, {SLOW_ROWS}) g"
# The same, failing (division by zero) once most rows are stored.
FAILING = (
    f"SELECT CASE WHEN g <= {SLOW_ROWS - 500} THEN g ELSE 1 / (g - g) END AS g, {_WIDE_SLOW} "
    f"FROM generate_series(1, {SLOW_ROWS}) g"
)
SLOTS = 4  # queries the server's worker runs at once (KEYHOLE_QUERY_JOB_CONCURRENCY's default)
WAIT_SECONDS = 120.0


@pytest.fixture
def http(qserver: KeyholeServer, alice: Keys) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=qserver.url, headers=alice.bearer, timeout=60) as client:
        yield client


def submit(http: httpx.Client, connection_id: str, sql: str) -> str:
    answer = http.post(f"/api/connections/{connection_id}/query", json={"query": sql})
    assert answer.status_code == 200, answer.text
    query_id: str = answer.json()["data"]["id"]
    return query_id


def status(http: httpx.Client, query_id: str) -> dict[str, Any]:
    answer = http.get(f"/api/queries/{query_id}")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def follow(http: httpx.Client, query_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every ``progress`` read while the query ran, and the query once finished."""
    running: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        data = status(http, query_id)
        if data["status"] in ("done", "failed"):
            return running, data
        if data["status"] == "running":
            running.append(data["progress"])
        else:
            assert "progress" not in data, data
        assert time.monotonic() < deadline, f"query {query_id} still {data['status']}"
        time.sleep(0.1)


def wait_until(http: httpx.Client, query_id: str, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while (data := status(http, query_id))["status"] != wanted:
        assert data["status"] not in ("done", "failed"), data
        assert time.monotonic() < deadline, f"query {query_id} still {data['status']}"
        time.sleep(0.05)
    return data


def test_progress_grows_while_running_and_totals_once_done(http: httpx.Client, pg: str) -> None:
    running, done = follow(http, submit(http, pg, SLOW))

    assert done["status"] == "done" and done["count"] == SLOW_ROWS
    rows = [progress["rows"] for progress in running]
    sizes = [progress["bytes"] for progress in running]
    elapsed = [progress["elapsed_seconds"] for progress in running]
    assert rows == sorted(rows) and sizes == sorted(sizes) and elapsed == sorted(elapsed)
    assert any(0 < count < SLOW_ROWS for count in rows), rows  # seen part-way
    assert elapsed[-1] > elapsed[0]
    assert all(isinstance(seconds, float) and seconds >= 0 for seconds in elapsed)

    total = done["progress"]
    assert total["rows"] == done["count"] == SLOW_ROWS
    assert total["bytes"] >= max(sizes) and total["bytes"] > 0
    assert total["elapsed_seconds"] >= elapsed[-1]
    assert status(http, done["id"])["progress"] == total  # the run's length: it no longer grows


def test_each_page_of_a_done_query_carries_its_totals(http: httpx.Client, pg: str) -> None:
    _, done = follow(http, submit(http, pg, f"SELECT g FROM generate_series(1, {2 * PAGE_ROWS + 5}) g"))
    following = http.get(f"/api/queries/{done['id']}").json()["links"]["next"]
    second = http.get(following).json()["data"]
    assert second["progress"] == done["progress"] and done["progress"]["rows"] == 2 * PAGE_ROWS + 5


def test_a_failed_query_has_no_progress(http: httpx.Client, pg: str) -> None:
    running, failed = follow(http, submit(http, pg, FAILING))

    assert failed["status"] == "failed" and "division by zero" in (failed["error"] or "")
    assert any(progress["rows"] > 0 for progress in running), running  # it had stored rows…
    assert "progress" not in failed  # …deleted with the failure: nothing to count


def test_a_cancelled_query_has_no_progress(http: httpx.Client, pg: str) -> None:
    query_id = submit(http, pg, SLOW)
    wait_until(http, query_id, "running")

    cancelled = http.delete(f"/api/queries/{query_id}")
    assert cancelled.status_code == 200, cancelled.text
    data = cancelled.json()["data"]
    assert (data["status"], data["error"]) == ("failed", "cancelled")
    assert "progress" not in data and "progress" not in status(http, query_id)


def test_a_queued_query_has_no_progress_until_it_runs(http: httpx.Client, pg: str) -> None:
    blockers = [submit(http, pg, "SELECT pg_sleep(60)") for _ in range(SLOTS)]
    try:
        for blocker in blockers:
            wait_until(http, blocker, "running")
        queued = submit(http, pg, "SELECT 1 AS one")
        time.sleep(0.5)  # a free slot would have started it by now; none is free
        data = status(http, queued)
        assert data["status"] == "created" and "progress" not in data
    finally:
        for blocker in blockers:
            http.delete(f"/api/queries/{blocker}")
    _, done = follow(http, queued)
    assert done["status"] == "done" and done["progress"]["rows"] == 1


# -- the MCP tools and the console ---------------------------------------------------------------


def sql_tool(qserver: KeyholeServer, alice: Keys, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    headers, body = stateless_call(tool, arguments)
    answer = httpx.post(qserver.url + "/mcp", content=body, headers={**headers, **alice.bearer}, timeout=60)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["result"]
    assert not result.get("isError"), result
    return result


def test_the_sql_tools_report_progress_too(qserver: KeyholeServer, alice: Keys, pg: str) -> None:
    first = sql_tool(qserver, alice, "keyhole_sql_query", {"connection": pg, "sql": SLOW, "wait_ms": 0})
    query_id = first["structuredContent"]["query_id"]
    seen: list[int] = []
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        result = sql_tool(qserver, alice, "keyhole_sql_results", {"query_id": query_id, "wait_ms": 0})
        shown = result["structuredContent"]
        if shown["status"] != "running":
            break
        seen.append(shown["progress"]["rows"])
        assert f"{shown['progress']['rows']} rows so far" in result["content"][0]["text"]
        assert time.monotonic() < deadline
        time.sleep(0.1)

    assert shown["status"] == "done" and any(0 < rows < SLOW_ROWS for rows in seen), seen
    assert shown["progress"]["rows"] == shown["row_count"] == SLOW_ROWS


def test_elapsed_runs_from_start_to_finish() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    queued = QueryView(
        id="q",
        status="created",
        fields=None,
        field_kinds=None,
        count=None,
        rows_so_far=0,
        bytes_so_far=0,
        expires_at=start + timedelta(hours=1),
        error=None,
        error_key=None,
        truncated=False,
        pages=0,
        connection_id="c",
        created_at=start,
        started_at=None,
        finished_at=None,
    )
    running = replace(queued, status="running", started_at=start, rows_so_far=1234, bytes_so_far=5_000_000)
    done = replace(running, status="done", count=1500, finished_at=start + timedelta(seconds=9.5))
    cancelled_while_queued = replace(queued, status="failed", finished_at=start)
    later = start + timedelta(seconds=7.25)

    assert queued.elapsed_seconds(later) is None and cancelled_while_queued.elapsed_seconds(later) is None
    assert running.elapsed_seconds(later) == 7.25
    assert done.elapsed_seconds(later) == done.elapsed_seconds(later + timedelta(days=1)) == 9.5

    assert (shown_query(running, {}, later).timer, shown_query(running, {}, later).progress) == (
        "0:07",
        "1,234 rows, 4.8 MiB so far",
    )
    assert (shown_query(done, {}, later).timer, shown_query(done, {}, later).progress) == ("9.5 s", "")
