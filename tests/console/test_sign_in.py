"""Signing in and out of the console over HTTP: the session cookie, CSRF, and what ends a session."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser

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


def test_pages_need_a_session(console_server: ConsoleServer) -> None:
    with httpx.Client(base_url=console_server.url) as anonymous:
        answer = anonymous.get("/console/connections")
        assert answer.status_code == 303
        forged = anonymous.post(
            "/console/sign-out",
            data={"csrf_token": "x"},
            headers=SAME_ORIGIN,
            cookies={"keyhole_session": "forged"},
        )
        assert forged.status_code == 401


def test_signing_in_from_a_browser(console_server: ConsoleServer, browser: Browser) -> None:
    context = browser.new_context()
    try:
        watched = watched_sign_in(context, console_server.url, console_server.acme.user_api_key)
        cookies = {cookie["name"]: cookie for cookie in context.cookies()}
        session = cookies["keyhole_session"]
        assert session["httpOnly"] is True
        assert session["sameSite"] == "Strict"
        assert "keyhole_sign_in" not in cookies  # the pre-session token goes with sign-in
        storage = watched.page.evaluate("() => JSON.stringify([localStorage, sessionStorage])")
        assert console_server.acme.user_api_key not in storage
        watched.screenshot("console-connections")
        watched.page.get_by_role("button", name="Sign out").click()
        watched.page.wait_for_url("**/console/sign-in?signed_out=1")
        assert "keyhole_session" not in {cookie["name"] for cookie in context.cookies()}
        assert_clean(watched, console_server.url)
    finally:
        context.close()
