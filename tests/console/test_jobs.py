"""The Jobs page over HTTP: the caller's own async proxy calls, newest first and paged, a body
downloaded through a URL minted on click (never one in the page), and nobody else's jobs; the
owner listings behind it read an index of their own."""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from conftest import Keys
from keyhole.jobs.repository import JobRepository
from keyhole.queries.repository import QueryRepository
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.store.migrate import upgrade

from .conftest import ConsoleServer
from .support import ConsoleClient, sign_in
from .test_queries import SLOW_SQLITE, sqlite_warehouse
from .test_queries import submit as submit_query

_JOB_ROW = re.compile(r'href="/console/jobs/([0-9a-f-]{36})/download"')
_WAIT_SECONDS = 60


@dataclass
class Tenant:
    keys: Keys
    rest: httpx.Client
    console: ConsoleClient
    connection_id: str


def _tenant(server: ConsoleServer, keys: Keys, upstream: str, name: str) -> Iterator[Tenant]:
    rest = httpx.Client(base_url=server.url, headers=keys.bearer, timeout=30)
    created = rest.post(
        "/api/connections",
        json={"name": name, "type": "api", "configuration": {"url": upstream}, "validate": False},
    )
    assert created.status_code == 200, created.text
    console = sign_in(server.url, keys.user_api_key)
    yield Tenant(keys, rest, console, str(created.json()["data"]["id"]))
    console.http.close()
    rest.close()


@pytest.fixture(scope="module")
def caller(console_server: ConsoleServer, httpbin_url: str) -> Iterator[Tenant]:
    """A fresh organization, so that its user's jobs are only this module's."""
    keys = console_server.server.bootstrap(f"jobs-{uuid.uuid4().hex[:6]}", "jo@jobs.test")
    yield from _tenant(console_server, keys, httpbin_url, "echo")


def submit(tenant: Tenant, path: str, connection_id: str | None = None) -> str:
    answer = tenant.rest.post(
        f"/api/connections/{connection_id or tenant.connection_id}/proxy",
        json={"request": {"method": "GET", "path": path}, "async": True},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["jobId"])


def finished(tenant: Tenant, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        job: dict[str, object] = tenant.rest.get(f"/api/jobs/connectionproxy/{job_id}").json()["data"]
        if job["status"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} never finished"
        time.sleep(0.05)


def listed(console: ConsoleClient, path: str = "/console/jobs") -> list[str]:
    """The job ids a Jobs page lists, in its order (the 8-character prefixes shown)."""
    page = console.get(path)
    assert page.status_code == 200, page.text
    return re.findall(r"<td><code>([0-9a-f]{8})</code></td>", page.text)


def test_a_finished_call_is_listed_and_its_body_downloads_through_a_fresh_url(
    console_server: ConsoleServer, caller: Tenant
) -> None:
    marker = uuid.uuid4().hex
    job_id = submit(caller, f"/anything/{marker}")
    assert finished(caller, job_id)["status"] == "done"
    page = caller.console.get("/console/jobs")
    assert page.status_code == 200
    assert listed(caller.console)[0] == job_id[:8]
    assert f"GET /anything/{marker}" in page.text and ">echo<" in page.text and ">done<" in page.text
    assert "HTTP 200" in page.text and "application/json" in page.text
    assert f'href="/console/jobs/{job_id}/download"' in page.text
    assert "/api/blobs/" not in page.text  # no download URL until one is asked for

    minted = caller.console.get(f"/console/jobs/{job_id}/download")
    assert minted.status_code == 303
    location = minted.headers["location"]
    assert location.startswith(f"{console_server.url}/api/blobs/")
    body = httpx.get(location, timeout=30)
    assert body.status_code == 200
    assert body.headers["content-disposition"] == "attachment"
    assert body.json()["url"].endswith(f"/anything/{marker}")


def test_a_failed_call_shows_its_error_and_has_nothing_to_download(
    console_server: ConsoleServer, caller: Tenant
) -> None:
    closed = caller.rest.post(
        "/api/connections",
        json={
            "name": "closed",
            "type": "api",
            "configuration": {"url": "http://127.0.0.1:9"},
            "validate": False,
        },
    )
    assert closed.status_code == 200, closed.text
    job_id = submit(caller, "/nothing", str(closed.json()["data"]["id"]))
    job = finished(caller, job_id)
    assert job["status"] == "failed"
    page = caller.console.get("/console/jobs")
    assert listed(caller.console)[0] == job_id[:8]
    assert ">failed<" in page.text and str(job["error"]) in page.text
    assert f"/console/jobs/{job_id}/download" not in page.text
    refused = caller.console.get(f"/console/jobs/{job_id}/download")
    assert refused.status_code == 409 and "only a finished call has a body" in refused.text


def test_the_listing_pages_newest_first(caller: Tenant) -> None:
    submitted = [submit(caller, f"/anything/{number}") for number in range(27)]
    for job_id in submitted:
        finished(caller, job_id)
    first = listed(caller.console)
    assert len(first) == 25
    assert first[:3] == [job_id[:8] for job_id in reversed(submitted[-3:])]
    html = caller.console.get("/console/jobs").text
    older = re.search(r'<a rel="next" href="(/console/jobs\?before=[0-9a-f-]{36})">', html)
    assert older is not None and 'rel="prev"' not in html
    second = listed(caller.console, older.group(1))
    assert not set(first) & set(second)
    assert {job_id[:8] for job_id in submitted} <= set(first) | set(second)
    html = caller.console.get(older.group(1)).text
    newer = re.search(r'<a rel="prev" href="(/console/jobs\?after=[0-9a-f-]{36})">', html)
    assert newer is not None
    assert listed(caller.console, newer.group(1)) == first
    for cursor in ("?before=nope", f"?before={uuid.uuid4()}", f"?after={uuid.uuid4()}"):
        refused = caller.console.get(f"/console/jobs{cursor}")
        assert refused.status_code == 400 and "cursor" in refused.text


def test_nobody_else_sees_or_downloads_a_job(console_server: ConsoleServer, caller: Tenant) -> None:
    job_id = submit(caller, "/anything/mine")
    assert finished(caller, job_id)["status"] == "done"
    rival = sign_in(console_server.url, console_server.rival.user_api_key)
    colleague = sign_in(console_server.url, caller.keys.org_api_key)  # same organization
    try:
        for other in (rival, colleague):
            page = other.get("/console/jobs")
            assert page.status_code == 200
            assert job_id[:8] not in page.text and "/anything/mine" not in page.text
            stolen = other.get(f"/console/jobs/{job_id}/download")
            assert stolen.status_code == 404 and "/api/blobs/" not in stolen.text
            assert other.get(f"/console/jobs?before={job_id}").status_code == 400
    finally:
        rival.http.close()
        colleague.http.close()
    for bad in ("not-a-job", str(uuid.uuid4())):
        assert caller.console.get(f"/console/jobs/{bad}/download").status_code == 404


def test_running_queries_are_listed_on_the_jobs_page(console_server: ConsoleServer) -> None:
    acme = sign_in(console_server.url, console_server.acme.user_api_key)
    try:
        warehouse = sqlite_warehouse(console_server)
        query_id = submit_query(acme, warehouse.connection_id, SLOW_SQLITE)
        page = acme.get("/console/jobs")
        assert f'href="/console/queries/{query_id}"' in page.text
        assert acme.post(f"/console/queries/{query_id}/cancel").status_code == 303
        assert f'href="/console/queries/{query_id}"' not in acme.get("/console/jobs").text
    finally:
        acme.http.close()


async def test_the_owner_listings_read_an_index_in_their_order(tmp_path: Path) -> None:
    """The Jobs page's two listings (an owner's async calls, an owner's running queries) find the
    owner's rows and their order in one index, not by reading the organization's."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    await upgrade(url)
    database = Database(url)
    selects: list[tuple[str, Any]] = []

    def seen(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append((statement, parameters))

    event.listen(database.engine.sync_engine, "before_cursor_execute", seen)
    no_vault: Any = None  # an empty listing decrypts nothing
    jobs = JobRepository(database, no_vault, lease_seconds=30, max_attempts=1, ttl_seconds=60)
    assert await jobs.list_owned("org", "owner", "connectionproxy", limit=25) == []
    queries = QueryRepository(database)
    assert await queries.list_owned("org", "owner", now=utcnow(), limit=20, unfinished_only=True) == []
    await database.dispose()
    with sqlite3.connect(tmp_path / "store.db") as db:
        plans = [
            [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)]
            for sql, parameters in selects
        ]
    assert plans == [
        ["SEARCH jobs USING INDEX ix_jobs_owner_type_created (organization_id=? AND owner_id=? AND type=?)"],
        ["SEARCH queries USING INDEX ix_queries_owner_created (organization_id=? AND owner_id=?)"],
    ], plans
