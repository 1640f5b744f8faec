"""``/docs`` in a real browser: it renders every document from the server's own assets, asks no
other host for anything, and its "try it" reaches the running server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser import launched, watch
from conftest import KeyholeServer

pytestmark = pytest.mark.browser


def test_the_reference_renders_offline_and_tries_requests(server: KeyholeServer) -> None:
    with launched() as browser:
        page = browser.new_page()
        watched = watch(page)
        page.goto(server.url + "/docs")
        expect(page.get_by_role("heading", name="Keyhole API reference")).to_be_visible()
        expect(page.locator(".information-container .title")).to_contain_text("Keyhole", timeout=15000)
        expect(page.locator('.opblock-tag[data-tag="Proxy"]')).to_be_visible()
        watched.screenshot("docs-polytomic")

        operation = page.locator(
            ".opblock-get", has=page.locator(".opblock-summary-path", has_text=re.compile("^/healthz$"))
        )
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        operation.get_by_role("button", name="Execute").click()
        expect(operation.locator(".live-responses-table tbody .response-col_status").first).to_have_text(
            "200"
        )

        page.get_by_label("Document").select_option("/api/v3/openapi.json")
        expect(page.locator('.opblock-tag[data-tag="Connected accounts"]')).to_be_visible(timeout=15000)
        watched.screenshot("docs-composio")

        foreign = [url for url in watched.requests if not url.startswith(server.url)]
        assert foreign == [], foreign
        assert watched.failures == [], watched.failures
        assert watched.console_errors == [], watched.console_errors
