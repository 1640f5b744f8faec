"""The console's security in Chromium: no page breaks its Content Security Policy, a page of
another origin cannot make a signed-in browser post to the console, and wherever ``?next=``
points, the browser lands inside ``/console``."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import given
from playwright.sync_api import Browser, BrowserContext, Page

from conftest import Keys, free_port

from .conftest import ConsoleServer
from .support import assert_clean, sign_in, watched_sign_in
from .test_security import CANDIDATES, HYPOTHESIS, NASTY, SIGN_IN, Seeded, fresh_address, seeded_organization

# Registered before any page script runs: every policy violation of the page, kept on window.
_RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__violations.push(`${event.effectiveDirective} blocked ${event.blockedURI} at ${where}`);
});
"""
_SKIPPED_LINKS = (".csv", "/download", "/sign-out")


def new_context(browser: Browser) -> BrowserContext:
    """A browser of its own, from a client address of its own (sign-in is limited per address)."""
    context = browser.new_context(extra_http_headers={"X-Forwarded-For": fresh_address()})
    context.add_init_script(_RECORD_VIOLATIONS)
    return context


def violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("() => window.__violations")
    return found


def console_links(page: Page, base_url: str) -> list[str]:
    # getAttribute, not .href: a link inside an SVG (the activity chart's bars) has no string href.
    hrefs: list[str] = page.eval_on_selector_all(
        "a[href]", "links => links.map(link => new URL(link.getAttribute('href'), document.baseURI).href)"
    )
    return [
        href
        for href in hrefs
        if href.startswith(f"{base_url}/console") and not any(part in href for part in _SKIPPED_LINKS)
    ]


def stays_here(context: BrowserContext, url: str, base_url: str) -> bool:
    """Whether a link's page is the console's own (not a redirect to an OAuth provider)."""
    probe = context.request.get(url, max_redirects=0)
    location = probe.headers.get("location", "")
    return not (
        300 <= probe.status < 400
        and location.startswith(("http:", "https:", "//"))
        and not location.startswith(base_url)
    )


@pytest.fixture(scope="module")
def seeded(console_server: ConsoleServer, httpbin_url: str) -> Iterator[Seeded]:
    """An organization of this module's own with an object behind every detail page."""
    with seeded_organization(console_server, httpbin_url) as organization:
        yield organization


def test_no_page_reachable_from_the_menu_breaks_the_policy(
    console_server: ConsoleServer, browser: Browser, seeded: Seeded
) -> None:
    base = console_server.url
    context = new_context(browser)
    try:
        anonymous = context.new_page()
        anonymous.goto(f"{base}{SIGN_IN}")
        assert violations(anonymous) == []
        anonymous.close()
        watched = watched_sign_in(context, base, seeded.keys.user_api_key)
        page = watched.page
        menu = page.eval_on_selector_all("header nav a", "links => links.map(link => link.href)")
        assert f"{base}/console/keys" in menu  # an administrator's menu
        visited: set[str] = set()
        pending: list[str] = list(dict.fromkeys(menu))
        for depth in range(3):  # the menu's pages, the console links on them, and on theirs
            found: list[str] = []
            for url in pending:
                if url in visited or not stays_here(context, url, base):
                    continue
                visited.add(url)
                page.goto(url)
                assert violations(page) == [], url
                if depth == 0:
                    watched.screenshot("console-security-" + urlsplit(url).path.strip("/").replace("/", "-"))
                found += console_links(page, base)
            pending = [url for url in dict.fromkeys(found) if url not in visited]
        assert len(visited) > len(menu)
        ids = seeded.ids
        for detail in (  # every kind of object's page, reached through the links
            f"/console/connections/{ids['connection_id']}",
            f"/console/activity/{ids['call_id']}",
            f"/console/queries/{ids['query_id']}",
            f"/console/keys/{ids['key_id']}/revoke",
            f"/console/users/{ids['user_id']}/remove",
        ):
            assert f"{base}{detail}" in visited, detail
        page.goto(f"{base}/console/keys")
        page.get_by_role("button", name="Create key").click()
        page.wait_for_load_state("load")
        assert violations(page) == []  # the page showing a new key
        page.goto(f"{base}/console/no-such-page")
        assert violations(page) == []
        # The one error a page logged: the browser's note of the 404 just asked for.
        not_found = [error for error in watched.console_errors if "status of 404" in error]
        assert len(not_found) == 1, watched.console_errors
        watched.console_errors.remove(not_found[0])
        assert_clean(watched, base, secrets=(seeded.upstream_secret, seeded.keys.user_api_key))

        # The recorder hears a violation: an inline script, which the policy blocks.
        probe = context.new_page()
        probe.goto(f"{base}/console/connections")
        probe.evaluate(
            "() => document.body.append(Object.assign(document.createElement('script'), {text: '1'}))"
        )
        probe.wait_for_function("() => window.__violations.length > 0")
        assert violations(probe)[0].startswith("script-src-elem blocked inline")
    finally:
        context.close()


@dataclass
class ForeignSite:
    """Pages served from another origin than the console's, by path."""

    pages: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def foreign_site() -> Iterator[ForeignSite]:
    site = ForeignSite()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = site.pages.get(self.path, "not found").encode()
            self.send_response(200 if self.path in site.pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", site.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    thread.join(10)


def auto_submitting(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{name}" value="{value}">' for name, value in fields.items())
    return (
        f'<!doctype html><form method="post" action="{action}">{inputs}</form>'
        "<script>document.forms[0].submit()</script>"
    )


def key_count(console_server: ConsoleServer, keys: Keys) -> int:
    with httpx.Client(base_url=console_server.url, headers=keys.bearer, timeout=30) as rest:
        return len(rest.get("/api/organization/keys").json()["data"])


@pytest.mark.parametrize(
    ("host", "refusal"),
    [("127.0.0.1", 403), ("localhost", 401)],
    ids=["same-site-other-origin", "cross-site"],
)
def test_a_page_of_another_origin_cannot_post_for_a_signed_in_browser(
    console_server: ConsoleServer, browser: Browser, foreign_site: ForeignSite, host: str, refusal: int
) -> None:
    """From 127.0.0.1 on another port the browser sends the SameSite=Strict cookie (same site), and
    Fetch Metadata refuses the post; from localhost it sends no cookie at all. Even a leaked CSRF
    token does not help the other page."""
    base = console_server.url
    org = console_server.server.bootstrap(f"console-foreign-{uuid.uuid4().hex[:8]}", "fay@foreign.test")
    context = new_context(browser)
    try:
        watched = watched_sign_in(context, base, org.user_api_key)
        page = watched.page
        page.goto(f"{base}/console/keys")
        leaked = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
        before = key_count(console_server, org)
        attacks = {
            f"/sign-out-{host}": auto_submitting(f"{base}/console/sign-out", {}),
            f"/sign-out-leaked-{host}": auto_submitting(f"{base}/console/sign-out", {"csrf_token": leaked}),
            f"/new-key-leaked-{host}": auto_submitting(
                f"{base}/console/keys", {"owner": "organization", "name": "planted", "csrf_token": leaked}
            ),
        }
        foreign_site.pages.update(attacks)
        for path in attacks:
            with page.expect_response(lambda response: response.request.method == "POST") as posted:
                page.goto(foreign_site.url(host, path))
            assert posted.value.status == refusal, path
            assert posted.value.url.startswith(f"{base}/console/")
            page.goto(f"{base}/console/keys")
            assert page.url == f"{base}/console/keys", path  # still signed in
        assert key_count(console_server, org) == before
        assert "planted" not in page.content()
    finally:
        context.close()


@pytest.fixture(scope="module")
def resolver(browser: Browser, console_server: ConsoleServer) -> Iterator[Page]:
    """A page that resolves URLs as Chromium does."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{console_server.url}{SIGN_IN}")
    yield page
    context.close()


def resolved(resolver: Page, location: str) -> dict[str, str]:
    found: dict[str, str] = resolver.evaluate(
        "(location) => { const url = new URL(location, window.location.href);"
        " return {origin: url.origin, pathname: url.pathname}; }",
        location,
    )
    return found


def assert_in_console(resolver: Page, base_url: str, location: str) -> None:
    where = resolved(resolver, location)
    assert where["origin"] == base_url, location
    assert where["pathname"] == "/console" or where["pathname"].startswith("/console/"), location


@HYPOTHESIS
@given(candidate=CANDIDATES)
def test_chromium_resolves_every_next_inside_the_console(
    candidate: str, console_server: ConsoleServer, resolver: Page, signed_in_admin: httpx.Client
) -> None:
    answer = signed_in_admin.get(SIGN_IN, params={"next": candidate})
    assert answer.status_code == 303
    assert_in_console(resolver, console_server.url, answer.headers["location"])


@pytest.fixture(scope="module")
def signed_in_admin(console_server: ConsoleServer) -> Iterator[httpx.Client]:
    client = sign_in(console_server.url, console_server.acme.user_api_key)
    yield client.http
    client.http.close()


def test_signing_in_with_a_hostile_next_lands_in_the_console(
    console_server: ConsoleServer, browser: Browser
) -> None:
    base = console_server.url
    context = new_context(browser)
    try:
        page = context.new_page()
        for candidate in NASTY:
            context.set_extra_http_headers({"X-Forwarded-For": fresh_address()})
            context.clear_cookies()
            page.goto(f"{base}{SIGN_IN}?next={quote(candidate, safe='')}")
            page.get_by_label("API key").fill(console_server.acme.user_api_key)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state("load")
            assert urlsplit(page.url).netloc == urlsplit(base).netloc, candidate
            assert urlsplit(page.url).path.startswith("/console/"), (candidate, page.url)
    finally:
        context.close()
