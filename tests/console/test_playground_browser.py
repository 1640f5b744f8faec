"""The playground and Activity in Chromium: sign in, run a call through httpbin and see its echoed
credential redacted, copy the same call as curl, follow the call id to its detail, and narrow
Activity with a filter; no console error, no failed or foreign request on the way."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from .conftest import ConsoleServer
from .playground_support import SECRET, tenant
from .support import assert_clean, watched_sign_in


def test_a_playground_call_followed_into_activity(
    console_server: ConsoleServer, browser: Browser, httpbin_url: str
) -> None:
    with tenant(console_server) as org:
        org.connection(httpbin_url, name="httpbin echo")
        context = browser.new_context()
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console_server.url)
        try:
            watched = watched_sign_in(context, console_server.url, org.keys.user_api_key)
            page = watched.page
            navigation = page.get_by_role("navigation", name="Console")
            navigation.get_by_role("link", name="Playground").click()
            page.wait_for_url("**/console/playground")
            expect(page.get_by_label("Connection")).to_contain_text("httpbin echo")
            expect(page.locator("dl.facts")).to_contain_text("Authorization")  # injected, by name

            page.get_by_label("Method").select_option("POST")
            page.get_by_label("Path").fill("/anything/from-the-browser")
            page.get_by_label("Query parameters").fill("page=2")
            page.get_by_label("Headers").fill("X-Trace: browser-1")
            page.get_by_label("Body", exact=True).fill('{"hello": "browser"}')
            page.get_by_role("button", name="Send").click()
            expect(page.locator("#answer-status")).to_have_text("200 OK")
            raw = page.locator("details", has_text="Raw body")
            raw.locator("summary").click()
            expect(raw.locator("pre")).to_contain_text('"Authorization": "Bearer [REDACTED]"')
            expect(raw.locator("pre")).to_contain_text('"X-Trace": "browser-1"')
            assert SECRET not in page.content()
            page.get_by_role("button", name="Copy curl").click()
            expect(page.get_by_role("button", name="Copied")).to_be_visible()
            copied = page.evaluate("() => navigator.clipboard.readText()")
            assert "$KEYHOLE_API_KEY" in copied and "/anything/from-the-browser" in copied
            assert org.keys.user_api_key not in copied
            watched.screenshot("playground-answer")

            page.get_by_label("Path").fill("/status/418")
            page.get_by_label("Body", exact=True).fill("")
            page.get_by_label("Path").press("Control+Enter")  # the comfort playground.js adds
            expect(page.locator("#answer-status")).to_contain_text("418")

            page.get_by_label("Path").fill("/anything/again")
            page.get_by_role("button", name="Send").click()
            expect(page.locator("#answer-status")).to_have_text("200 OK")
            call_id = page.locator("#call-id").inner_text()
            page.locator("#call-id").click()
            page.wait_for_url(f"**/console/activity/{call_id}")
            expect(page.get_by_role("heading", level=1)).to_contain_text(call_id)
            expect(page.locator("#verdict")).to_have_text(
                "The call went through, and the upstream answered 200 OK."
            )
            expect(page.locator("dl.facts")).to_contain_text("/anything/again?page=2")
            expect(page.locator("dl.facts")).to_contain_text("the console's playground")
            watched.screenshot("activity-call")

            navigation.get_by_role("link", name="Activity").click()
            page.wait_for_url(re.compile(r".*/console/activity$"))
            expect(page.locator(f'tr[data-call="{call_id}"]')).to_be_visible()
            expect(page.locator("svg.chart")).to_have_count(1)
            page.get_by_label("Upstream status").select_option("4xx")
            page.get_by_role("button", name="Filter").click()
            page.wait_for_url("**status=4xx**")
            expect(page.locator("table#calls tbody tr")).to_have_count(1)
            expect(page.locator(f'tr[data-call="{call_id}"]')).to_have_count(0)
            expect(page.locator("table#calls")).to_contain_text("/status/418")
            watched.screenshot("activity-filtered")
            assert SECRET not in page.content()
            assert_clean(watched, console_server.url)
        finally:
            context.close()


def test_the_pages_fit_a_phone(console_server: ConsoleServer, browser: Browser, httpbin_url: str) -> None:
    with tenant(console_server) as org:
        echo = org.connection(httpbin_url, name="a connection with a rather long name for a phone")
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        try:
            watched = watched_sign_in(context, console_server.url, org.keys.user_api_key)
            page = watched.page
            page.goto(f"{console_server.url}/console/playground?connection={echo}")
            page.get_by_label("Path").fill("/anything")
            page.get_by_role("button", name="Send").click()
            expect(page.locator("#answer-status")).to_have_text("200 OK")
            pages = {"playground-phone": page.url}
            call_id = page.locator("#call-id").inner_text()
            pages["activity-phone"] = f"{console_server.url}/console/activity"
            pages["activity-call-phone"] = f"{console_server.url}/console/activity/{call_id}"
            for name, url in pages.items():
                if page.url != url:
                    page.goto(url)
                overflow = page.evaluate(
                    "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, (name, overflow)  # nothing wider than the phone
                watched.screenshot(name)
            assert_clean(watched, console_server.url)
        finally:
            context.close()
