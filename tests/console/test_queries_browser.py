"""Queries and Jobs in Chromium: run a query from the editor with the keyboard, watch it finish,
page the grid forward and back, download its CSV, cancel a long query from its page, and fetch
an async call's body from the Jobs page, with no console error or failed request anywhere; a
page watching a query shows the sign-in once its session ends, and the 410 once it expires."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from .conftest import ConsoleServer
from .support import assert_clean, watched_sign_in
from .test_queries import ITEMS, ROWS, SLOW_SQLITE, sqlite_warehouse

_QUERY_PAGE = re.compile(r".*/console/queries/[0-9a-f-]{36}$")
_WAIT_MS = 60_000


def _first_ids(page: Page) -> str:
    return page.locator("table.result-grid tbody tr td:first-child").first.inner_text()


def _run_from_editor(page: Page, base_url: str, connection_id: str, sql: str, *, keyboard: bool) -> str:
    page.goto(f"{base_url}/console/queries")
    page.get_by_label("Database connection").select_option(connection_id)
    editor = page.get_by_label("SQL")
    editor.fill(sql)
    if keyboard:
        editor.press("Control+Enter")
    else:
        page.get_by_role("button", name="Run").click()
    page.wait_for_url(_QUERY_PAGE)
    return page.url.rsplit("/", 1)[-1]


def test_queries_and_jobs_in_a_browser(
    console_server: ConsoleServer, browser: Browser, httpbin_url: str, tmp_path: Path
) -> None:
    warehouse = sqlite_warehouse(console_server)
    keys = console_server.acme
    with httpx.Client(base_url=console_server.url, headers=keys.bearer, timeout=30) as rest:
        api = rest.post(
            "/api/connections",
            json={"name": "echo", "type": "api", "configuration": {"url": httpbin_url}, "validate": False},
        )
        assert api.status_code == 200, api.text
        job = rest.post(
            f"/api/connections/{api.json()['data']['id']}/proxy",
            json={"request": {"method": "GET", "path": "/anything/from-the-jobs-page"}, "async": True},
        )
        assert job.status_code == 200, job.text
        job_id = job.json()["data"]["jobId"]
        deadline = time.monotonic() + _WAIT_MS / 1000
        while rest.get(f"/api/jobs/connectionproxy/{job_id}").json()["data"]["status"] != "done":
            assert time.monotonic() < deadline, "the async call never finished"
            time.sleep(0.05)
    context = browser.new_context(accept_downloads=True)
    try:
        watched = watched_sign_in(context, console_server.url, keys.user_api_key)
        page = watched.page

        # Run with Ctrl+Enter; the page polls its status and reloads into the grid.
        _run_from_editor(page, console_server.url, warehouse.connection_id, ITEMS, keyboard=True)
        expect(page.get_by_text(f"{ROWS} rows in 3 pages")).to_be_visible(timeout=_WAIT_MS)
        expect(page.get_by_text("Results expire at")).to_be_visible()
        assert _first_ids(page) == "1"
        watched.screenshot("console-query-result")

        page.get_by_role("link", name="Next →").click()
        expect(page.get_by_text("this is page 2")).to_be_visible()
        assert _first_ids(page) == "26"
        page.get_by_role("link", name="Next →").click()
        expect(page.get_by_text("this is page 3")).to_be_visible()
        assert _first_ids(page) == "51" and page.get_by_role("link", name="Next →").count() == 0
        page.get_by_role("link", name="← Previous").click()
        expect(page.get_by_text("this is page 2")).to_be_visible()
        assert _first_ids(page) == "26"

        with page.expect_download() as downloading:
            page.get_by_role("button", name="Download CSV").click()
        download = downloading.value
        assert download.suggested_filename.startswith("query-") and download.suggested_filename.endswith(
            ".csv"
        )
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        records = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"), newline="")))
        assert records[0] == ["id", "name", "note", "price", "big", "flag"]
        assert [record[0] for record in records[1:]] == [str(number) for number in range(1, ROWS + 1)]
        assert records[1][1] == "'=HYPERLINK(1)"  # the form protects against formulas unless told not to

        # A query that runs until it is cancelled, cancelled from its page.
        _run_from_editor(page, console_server.url, warehouse.connection_id, SLOW_SQLITE, keyboard=False)
        expect(page.get_by_role("timer")).to_contain_text("running", timeout=_WAIT_MS)
        watched.screenshot("console-query-running")
        page.get_by_role("button", name="Cancel").click()
        expect(page.get_by_text("Cancelled: the statement was stopped on the database")).to_be_visible()
        expect(page.locator(".badge", has_text="cancelled")).to_be_visible()
        watched.screenshot("console-query-cancelled")

        page.get_by_role("link", name="Queries").click()
        expect(page.get_by_role("heading", name="Your recent queries")).to_be_visible()
        watched.screenshot("console-queries")

        # Jobs: the async call, its body fetched through a link minted on click.
        page.get_by_role("link", name="Jobs", exact=True).click()
        row = page.get_by_role("row").filter(has_text="/anything/from-the-jobs-page")
        expect(row.get_by_text("done", exact=True)).to_be_visible()
        watched.screenshot("console-jobs")
        with page.expect_download() as downloading:
            row.get_by_role("link", name="Download").click()
        body = downloading.value
        fetched = tmp_path / "body.json"
        body.save_as(fetched)
        assert "/anything/from-the-jobs-page" in fetched.read_text()

        # Chromium reports a navigation that became a download as aborted: those two, and only
        # those, are expected.
        downloads = {f"GET {download.url}: net::ERR_ABORTED", f"GET {body.url}: net::ERR_ABORTED"}
        assert set(watched.failures) == downloads
        watched.failures = [failure for failure in watched.failures if failure not in downloads]
        assert_clean(watched, console_server.url)
    finally:
        context.close()


def test_a_watched_query_whose_session_ends_or_results_expire_shows_why(
    console_server: ConsoleServer, browser: Browser
) -> None:
    warehouse = sqlite_warehouse(console_server)
    context = browser.new_context()
    try:
        watched = watched_sign_in(context, console_server.url, console_server.acme.user_api_key)
        page = watched.page
        query_id = _run_from_editor(
            page, console_server.url, warehouse.connection_id, SLOW_SQLITE, keyboard=False
        )
        expect(page.get_by_role("timer")).to_contain_text("running", timeout=_WAIT_MS)
        context.clear_cookies()  # the session ends while the page polls the status
        page.wait_for_url(re.compile(r".*/console/sign-in\?next=%2Fconsole%2Fqueries%2F" + query_id + "$"))
        expect(page.get_by_label("API key")).to_be_visible()
        assert watched.failures == [] and watched.console_errors == []

        watched = watched_sign_in(context, console_server.url, console_server.acme.user_api_key)
        page = watched.page
        page.goto(f"{console_server.url}/console/queries/{query_id}")
        expect(page.get_by_role("timer")).to_contain_text("running", timeout=_WAIT_MS)
        a_minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        with sqlite3.connect(console_server.server.home / "keyhole.db") as db:
            db.execute("UPDATE queries SET expires_at = ? WHERE id = ?", (a_minute_ago, query_id))
        expect(page.get_by_text("run the query again")).to_be_visible(timeout=_WAIT_MS)
        assert page.url == f"{console_server.url}/console/queries/{query_id}"
        assert page.get_by_role("timer").count() == 0
        assert watched.failures == []
    finally:
        context.close()
