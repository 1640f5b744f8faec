"""Signing in and out of the console over HTTP: the session cookie, CSRF, and what ends a session."""

from __future__ import annotations

import httpx

from .conftest import ConsoleServer
from .support import SAME_ORIGIN, sign_in


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
