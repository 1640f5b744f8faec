"""Helpers of the console suite: a signed-in HTTP client (the console's forms posted as a
browser would) and a signed-in browser page."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from playwright.sync_api import BrowserContext, Page

from browser import Watched, watch
from keyhole.api.console.security import HEADERS

_META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_SIGN_IN_TOKEN = re.compile(r'name="sign_in_token" value="([^"]+)"')
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
_SIGN_INS = itertools.count(1)


def csrf_of(html: str) -> str:
    found = _META_CSRF.search(html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


@dataclass
class ConsoleClient:
    """An httpx client holding a console session; ``post`` adds the CSRF token and the same-origin
    Fetch Metadata a browser sends from the console's own pages."""

    http: httpx.Client
    csrf: str

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(
        self, path: str, data: dict[str, Any] | list[tuple[str, str]] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A form as a browser sends it: urlencoded in order, repeated names kept."""
        pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
        pairs.append(("csrf_token", self.csrf))
        headers = {
            **SAME_ORIGIN,
            "Content-Type": "application/x-www-form-urlencoded",
            **kwargs.pop("headers", {}),
        }
        return self.http.post(path, content=urlencode(pairs), headers=headers, **kwargs)


def _own_address() -> str:
    """A client address of its own for one sign-in. Sign-in attempts are limited per address, and
    the server takes the address from X-Forwarded-For when the peer is loopback (a local proxy):
    the suite signs in far more often than one person would, and tests the limit on its own."""
    number = next(_SIGN_INS)
    return f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"


def sign_in(base_url: str, api_key: str) -> ConsoleClient:
    """A new client signed in with ``api_key`` through the sign-in form."""
    http = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
    form = http.get("/console/sign-in")
    assert form.status_code == 200, form.text
    token = _SIGN_IN_TOKEN.search(form.text)
    assert token is not None
    answer = http.post(
        "/console/sign-in",
        data={"sign_in_token": token.group(1), "api_key": api_key, "next": "/console/connections"},
        headers={**SAME_ORIGIN, "X-Forwarded-For": _own_address()},
    )
    assert answer.status_code == 303, answer.text
    page = http.get("/console/connections")
    assert page.status_code == 200, page.text
    return ConsoleClient(http, csrf_of(page.text))


def browser_sign_in(context: BrowserContext, base_url: str, api_key: str) -> Page:
    """A page of ``context`` signed in through the sign-in form, as a person would."""
    return watched_sign_in(context, base_url, api_key).page


def watched_sign_in(context: BrowserContext, base_url: str, api_key: str) -> Watched:
    """A page of ``context`` signed in through the sign-in form, as a person would, with its
    requests, failures and console errors recorded. The context gets a client address of its own."""
    context.set_extra_http_headers({"X-Forwarded-For": _own_address()})
    page = context.new_page()
    watched = watch(page)
    page.goto(f"{base_url}/console/")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/console/connections.*"))
    return watched


def assert_clean(watched: Watched, base_url: str, *, secrets: tuple[str, ...] = ()) -> None:
    """Nothing went wrong in the page: no console error, no failed request, nothing fetched from
    anywhere but the server itself, every console answer with the console's security headers, and
    none of ``secrets`` in any answer's headers or body (redirects included)."""
    assert watched.console_errors == []
    assert watched.failures == []
    assert all(url.startswith((base_url, "data:")) for url in watched.requests), watched.requests
    for answer in watched.answers:
        if answer.url.startswith(f"{base_url}/console"):
            for name, value in HEADERS.items():
                assert answer.headers.get(name.lower()) == value, (answer.url, name)
        for secret in secrets:
            assert all(secret not in value for value in answer.headers.values()), (answer.url, "headers")
            assert answer.body is None or secret.encode() not in answer.body, (answer.url, "body")
