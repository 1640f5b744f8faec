"""The README's quickstart in a browser alone: an operator signs in, creates an HTTP connection from
the generated form, calls it from the playground (its echoed credential redacted), finds the call in
Activity, creates a SQLite connection, runs a query and pages its result, cancels a long query and
signs out. A second organization, signed in beside it, sees none of it. No console error, no
failed request and no request to another host on any page; a screenshot of each page."""

from __future__ import annotations

import re
import sqlite3
import uuid

from playwright.sync_api import Browser, Page, expect

from browser import Watched

from .conftest import ConsoleServer
from .support import assert_clean, watched_sign_in

_DETAIL = re.compile(r".*/console/connections/([0-9a-f-]{36})(\?.*)?$")
_QUERY = re.compile(r".*/console/queries/([0-9a-f-]{36})$")
_ROWS = 60  # more than two of the server's 25-row pages
_SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
_NOT_FOUND = "Failed to load resource: the server responded with a status of 404 (Not Found)"
_WAIT_MS = 60_000


def _create_http_connection(page: Page, base: str, httpbin_url: str, token: str) -> str:
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Connections").click()
    page.get_by_role("link", name="New connection").first.click()
    page.get_by_role("link", name="HTTP API").click()
    page.get_by_label("Name (required)", exact=True).fill("billing")
    page.get_by_label("Base URL (required)", exact=True).fill(httpbin_url)
    page.get_by_label("Authentication", exact=True).select_option("bearer")
    page.get_by_label("Token (required)", exact=True).fill(token)
    page.get_by_role("button", name="Create connection").click()
    page.wait_for_url(_DETAIL)
    expect(page.get_by_text("Connection created.")).to_be_visible()
    found = _DETAIL.match(page.url)
    assert found is not None
    return found.group(1)


def _create_sqlite_connection(page: Page, file_name: str) -> str:
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Connections").click()
    page.get_by_role("link", name="New connection").first.click()
    page.get_by_role("link", name="SQLite").click()
    page.get_by_label("Name (required)", exact=True).fill("warehouse")
    page.get_by_label(re.compile("^Database file path")).fill(file_name)
    page.get_by_role("button", name="Create connection").click()
    page.wait_for_url(_DETAIL)
    found = _DETAIL.match(page.url)
    assert found is not None
    return found.group(1)


def _call_from_playground(watched: Watched, connection_id: str, token: str) -> str:
    page = watched.page
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Playground").click()
    page.get_by_label("Connection").select_option(connection_id)
    page.get_by_label("Path").fill("/anything/quickstart")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#answer-status")).to_have_text("200 OK")
    raw = page.locator("details", has_text="Raw body")
    raw.locator("summary").click()
    expect(raw.locator("pre")).to_contain_text('"Authorization": "Bearer [REDACTED]"')
    assert token not in page.content()
    watched.screenshot("journey-playground")
    return page.locator("#call-id").inner_text()


def _query_and_cancel(watched: Watched, connection_id: str) -> str:
    page = watched.page
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Queries").click()
    page.get_by_label("Database connection").select_option(connection_id)
    page.get_by_label("SQL").fill("SELECT id, label FROM items ORDER BY id")
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(_QUERY)
    expect(page.get_by_text(f"{_ROWS} rows in 3 pages")).to_be_visible(timeout=_WAIT_MS)
    expect(page.locator("table.result-grid tbody tr")).to_have_count(25)
    watched.screenshot("journey-query-result")
    page.get_by_role("link", name="Next →").click()
    expect(page.get_by_text("this is page 2")).to_be_visible()
    expect(page.locator("table.result-grid tbody tr td:first-child").first).to_have_text("26")
    found = _QUERY.match(page.url.split("?")[0])
    assert found is not None
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Queries").click()
    page.get_by_label("Database connection").select_option(connection_id)
    page.get_by_label("SQL").fill(_SLOW)
    page.get_by_role("button", name="Run").click()
    page.wait_for_url(_QUERY)
    expect(page.get_by_role("timer")).to_contain_text("running", timeout=_WAIT_MS)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("Cancelled: the statement was stopped on the database")).to_be_visible()
    watched.screenshot("journey-query-cancelled")
    return found.group(1)


def test_the_quickstart_in_a_browser_alone(
    console_server: ConsoleServer, browser: Browser, httpbin_url: str
) -> None:
    run = uuid.uuid4().hex[:8]
    operator = console_server.server.bootstrap(f"journey-{run}", "ops@journey.test")
    outsider = console_server.server.bootstrap(f"journey-outsider-{run}", "eve@outsider.test")
    file_name = f"journey-{run}.sqlite"
    with sqlite3.connect(console_server.sql_root / file_name) as db:
        db.execute("CREATE TABLE items (id INTEGER, label TEXT)")
        db.executemany("INSERT INTO items VALUES (?, ?)", [(n, f"item {n}") for n in range(1, _ROWS + 1)])
    token = f"tok-{uuid.uuid4().hex}"
    base = console_server.url
    mine = browser.new_context()
    theirs = browser.new_context()
    try:
        watched = watched_sign_in(mine, base, operator.user_api_key)
        page = watched.page
        expect(page.get_by_text("No connections yet")).to_be_visible()
        http_id = _create_http_connection(page, base, httpbin_url, token)
        watched.screenshot("journey-connection")
        call_id = _call_from_playground(watched, http_id, token)

        page.get_by_role("navigation", name="Console").get_by_role("link", name="Activity").click()
        row = page.locator(f'tr[data-call="{call_id}"]')
        expect(row).to_contain_text("/anything/quickstart")
        watched.screenshot("journey-activity")
        page.goto(f"{base}/console/activity/{call_id}")
        expect(page.locator("#verdict")).to_have_text(
            "The call went through, and the upstream answered 200 OK."
        )
        assert token not in page.content()
        watched.screenshot("journey-call")

        sqlite_id = _create_sqlite_connection(page, file_name)
        query_id = _query_and_cancel(watched, sqlite_id)

        # The other organization, signed in at the same time, reaches none of it.
        outside = watched_sign_in(theirs, base, outsider.user_api_key)
        expect(outside.page.get_by_text("No connections yet")).to_be_visible()
        for path in (
            f"/console/connections/{http_id}",
            f"/console/playground?connection={http_id}",
            f"/console/activity/{call_id}",
            f"/console/queries/{query_id}",
        ):
            answer = outside.page.goto(base + path)
            assert answer is not None and answer.status == 404, path
            expect(outside.page.get_by_role("heading", name="Not found")).to_be_visible()
        outside.page.goto(f"{base}/console/activity")
        assert call_id not in outside.page.content() and "quickstart" not in outside.page.content()
        outside.screenshot("journey-outsider")
        assert outside.console_errors == [_NOT_FOUND] * 4  # Chromium's line for each 404 page
        outside.console_errors.clear()
        assert_clean(outside, base, secrets=(token, operator.user_api_key, outsider.user_api_key))

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/console/sign-in?signed_out=1")
        page.goto(f"{base}/console/connections")
        page.wait_for_url(re.compile(r".*/console/sign-in\?next=.*"))
        assert_clean(watched, base, secrets=(token, operator.user_api_key))
    finally:
        mine.close()
        theirs.close()
