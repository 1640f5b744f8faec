"""Signing in and out of the console over HTTP: the session cookie, CSRF, and what ends a session."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from contextlib import closing

import httpx
from playwright.sync_api import Browser, expect

from browser import watch

from .conftest import ConsoleServer
from .support import SAME_ORIGIN, assert_clean, sign_in, watched_sign_in


def test_a_key_signs_in_and_out(console_server: ConsoleServer) -> None:
    client = sign_in(console_server.url, console_server.acme.user_api_key)
    page = client.get("/console/connections")
    assert page.status_code == 200
    assert console_server.acme.user_api_key not in page.text
    out = client.post("/console/sign-out")
    assert out.status_code == 303
    again = client.get("/console/connections")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/console/sign-in?next=")


def _session_row_exists(console_server: ConsoleServer, token: str) -> bool:
    with closing(sqlite3.connect(console_server.server.home / "keyhole.db", timeout=30)) as db:
        found = db.execute(
            "SELECT 1 FROM browser_sessions WHERE token_hash = ?",
            (hashlib.sha256(token.encode()).hexdigest(),),
        )
        return found.fetchone() is not None


def test_signing_out_ends_the_session_on_the_server(console_server: ConsoleServer) -> None:
    """Not only the browser's cookie goes: the cookie's value, kept and sent again, opens nothing."""
    client = sign_in(console_server.url, console_server.acme.user_api_key)
    token = client.http.cookies["keyhole_session"]
    assert _session_row_exists(console_server, token)
    assert client.post("/console/sign-out").status_code == 303
    assert not _session_row_exists(console_server, token)
    with httpx.Client(
        base_url=console_server.url, timeout=30, headers={"Cookie": f"keyhole_session={token}"}
    ) as replayed:
        page = replayed.get("/console/connections")
        assert page.status_code == 303
        assert page.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fconnections"
        refused = replayed.post("/console/sign-out", data={"csrf_token": client.csrf}, headers=SAME_ORIGIN)
        assert refused.status_code == 401


def test_pages_need_a_session(console_server: ConsoleServer) -> None:
    with httpx.Client(base_url=console_server.url) as anonymous:
        answer = anonymous.get("/console/connections")
        assert answer.status_code == 303
        forged = anonymous.post(
            "/console/sign-out",
            data={"csrf_token": "x"},
            headers={**SAME_ORIGIN, "Cookie": "keyhole_session=forged"},
        )
        assert forged.status_code == 401


def test_signing_in_from_a_browser(console_server: ConsoleServer, browser: Browser) -> None:
    base = console_server.url
    api_key = console_server.acme.user_api_key
    context = browser.new_context()
    try:
        form = context.new_page()
        form.goto(f"{base}/console/sign-in")
        key_input = form.get_by_label("API key")
        expect(key_input).to_have_attribute("type", "password")
        expect(key_input).to_have_attribute("autocomplete", "off")
        form.close()
        watched = watched_sign_in(context, base, api_key)
        cookies = {cookie["name"]: cookie for cookie in context.cookies()}
        session = cookies["keyhole_session"]
        assert session["httpOnly"] is True
        assert session["sameSite"] == "Strict"
        assert "keyhole_sign_in" not in cookies  # the pre-session token goes with sign-in
        storage = watched.page.evaluate("() => JSON.stringify([localStorage, sessionStorage])")
        assert api_key not in storage
        assert api_key not in json.dumps(context.storage_state())  # cookies and every origin's storage
        watched.screenshot("console-connections")

        answer = watched.page.goto(f"{base}/console/connections/{uuid.uuid4()}")
        assert answer is not None and answer.status == 404
        expect(watched.page.get_by_role("heading", level=1)).to_have_text("Not found")
        watched.screenshot("console-error")

        watched.page.get_by_role("button", name="Sign out").click()
        watched.page.wait_for_url("**/console/sign-in?signed_out=1")
        expect(watched.page.get_by_role("status")).to_have_text("You are signed out.")
        watched.screenshot("console-signed-out")
        assert "keyhole_session" not in {cookie["name"] for cookie in context.cookies()}
        assert api_key not in json.dumps(context.storage_state())

        # The one error a page logged: the browser's note of the 404 asked for above.
        not_found = [error for error in watched.console_errors if "status of 404" in error]
        assert len(not_found) == 1, watched.console_errors
        watched.console_errors.remove(not_found[0])
        assert_clean(watched, base, secrets=(api_key,))
    finally:
        context.close()


def test_the_sign_in_page(console_server: ConsoleServer, browser: Browser) -> None:
    context = browser.new_context()
    try:
        watched = watch(context.new_page())
        watched.page.goto(f"{console_server.url}/console/")
        expect(watched.page.get_by_role("heading", level=1)).to_have_text("Sign in to Keyhole")
        expect(watched.page.get_by_label("API key")).to_be_focused()
        watched.screenshot("console-sign-in")
        assert_clean(watched, console_server.url)
    finally:
        context.close()
