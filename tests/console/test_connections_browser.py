"""The connections pages in Chromium: create an ``api`` connection to httpbin from the generated
form (its script showing only the chosen authentication's fields), find it listed, edit it with
its secret left blank, test it, turn its proxy off and on, delete it after typing its name; and
authorize an OAuth2 connection through a real authorization server, back to its page. No
console error, no failed request, no secret in any page."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Browser, Page, expect

from oauth.conftest import AuthServer, authserver  # noqa: F401 (a fixture)

from .conftest import ConsoleServer
from .support import assert_clean, watched_sign_in

_DETAIL = re.compile(r".*/console/connections/[0-9a-f-]{36}(\?.*)?$")


def _holds_no_secret(page: Page, *secrets: str) -> None:
    html = page.content()
    for secret in (*secrets, "[REDACTED]"):
        assert secret not in html
    values = page.eval_on_selector_all("input, textarea", "controls => controls.map(c => c.value)")
    assert all(secret not in value for value in values for secret in (*secrets, "[REDACTED]"))


def test_a_connection_from_create_to_delete(
    console_server: ConsoleServer, browser: Browser, httpbin_url: str
) -> None:
    keys = console_server.server.bootstrap(f"console-browse-{uuid.uuid4().hex[:8]}", "bea@browse.test")
    token = f"tok-{uuid.uuid4().hex}"
    context = browser.new_context()
    try:
        watched = watched_sign_in(context, console_server.url, keys.user_api_key)
        page = watched.page
        expect(page.get_by_text("No connections yet")).to_be_visible()
        watched.screenshot("connections-empty")

        page.get_by_role("link", name="New connection").first.click()
        page.wait_for_url("**/console/connections/new")
        watched.screenshot("connections-types")
        page.get_by_role("link", name="HTTP API").click()
        page.wait_for_url("**/console/connections/new/api")
        page.get_by_label("Name (required)", exact=True).fill("httpbin")
        page.get_by_label("Base URL (required)", exact=True).fill(httpbin_url)
        page.get_by_label("Authentication", exact=True).select_option("bearer")
        expect(page.get_by_label("Token (required)", exact=True)).to_be_visible()
        expect(page.get_by_label("Username (required)", exact=True)).to_be_hidden()  # another option's field
        page.get_by_label("Token (required)", exact=True).fill(token)
        page.get_by_label("Health-check path", exact=True).fill("/bearer")  # 401 without the token
        watched.screenshot("connections-new-form")
        page.get_by_role("button", name="Create connection").click()
        page.wait_for_url(_DETAIL)
        expect(page.get_by_text("Connection created.")).to_be_visible()
        expect(page.locator("dd", has_text="healthy").first).to_be_visible()
        _holds_no_secret(page, token)
        watched.screenshot("connection-detail")

        page.get_by_role("link", name="← Connections").click()
        page.wait_for_url("**/console/connections")
        row = page.get_by_role("row", name=re.compile("httpbin"))
        expect(row).to_contain_text("HTTP API")
        expect(row).to_contain_text("healthy")
        watched.screenshot("connections-list")

        row.get_by_role("link", name="httpbin").click()
        page.wait_for_url(_DETAIL)
        page.get_by_role("link", name="Edit").click()
        page.wait_for_url("**/edit")
        secret = page.get_by_label("Token (required)", exact=True)
        expect(secret).to_have_value("")
        expect(secret).to_have_attribute("autocomplete", "new-password")
        expect(page.get_by_text("Leave it empty to keep the stored secret")).to_be_visible()
        _holds_no_secret(page, token)
        page.get_by_label("Name (required)", exact=True).fill("httpbin (renamed)")
        watched.screenshot("connection-edit")
        page.get_by_role("button", name="Save changes").click()  # checks the target with the kept token
        page.wait_for_url("**?done=saved")
        expect(page.get_by_role("heading", name="httpbin (renamed)")).to_be_visible()

        page.get_by_role("button", name="Test").click()
        expect(page.get_by_text("The test passed")).to_be_visible()
        _holds_no_secret(page, token)
        watched.screenshot("connection-tested")

        page.get_by_role("button", name="Disable proxy").click()
        expect(page.get_by_text("The proxy is disabled")).to_be_visible()
        page.get_by_role("button", name="Enable proxy").click()
        expect(page.get_by_text("The proxy is enabled")).to_be_visible()

        page.get_by_role("link", name="Delete").click()
        page.wait_for_url("**/delete")
        confirm = page.get_by_label(re.compile("Type the connection's name"))
        confirm.fill("httpbin")
        page.get_by_role("button", name="Delete this connection").click()
        expect(page.get_by_text("nothing was deleted")).to_be_visible()
        # The refusal is a 400 page, which Chromium reports; it is the only error expected here.
        assert watched.console_errors == [
            "Failed to load resource: the server responded with a status of 400 (Bad Request)"
        ]
        watched.console_errors.clear()
        watched.screenshot("connection-delete")
        page.get_by_label(re.compile("Type the connection's name")).fill("httpbin (renamed)")
        page.get_by_role("button", name="Delete this connection").click()
        page.wait_for_url("**/console/connections?done=deleted")
        expect(page.get_by_text("Connection deleted.")).to_be_visible()
        expect(page.get_by_text("No connections yet")).to_be_visible()
        assert_clean(watched, console_server.url, secrets=(token, keys.user_api_key))
    finally:
        context.close()


def test_oauth2_connect_in_a_browser(
    console_server: ConsoleServer,
    browser: Browser,
    authserver: AuthServer,  # noqa: F811
) -> None:
    keys = console_server.server.bootstrap(f"console-oauth-{uuid.uuid4().hex[:8]}", "oli@oauth.test")
    auth = authserver.auth()
    context = browser.new_context()
    try:
        watched = watched_sign_in(context, console_server.url, keys.user_api_key)
        page = watched.page
        page.goto(f"{console_server.url}/console/connections/new/api")
        page.get_by_label("Name (required)", exact=True).fill("Calendar")
        page.get_by_label("Base URL (required)", exact=True).fill(authserver.url)
        page.get_by_label("Authentication", exact=True).select_option("oauth2")
        page.get_by_label("Authorization URL", exact=True).fill(auth["authorization_url"])
        page.get_by_label("Token URL (required)", exact=True).fill(auth["token_url"])
        page.get_by_label("Client ID (required)", exact=True).fill(auth["client_id"])
        page.get_by_label("Client secret", exact=True).fill(auth["client_secret"])
        page.get_by_label("Scopes", exact=True).fill("read\nwrite")
        page.get_by_role("button", name="Create connection").click()
        page.wait_for_url(_DETAIL)
        expect(page.get_by_text("awaiting authorization")).to_be_visible()
        watched.screenshot("connection-oauth-awaiting")

        page.get_by_role("link", name="Connect", exact=True).click()
        # The provider consents at once and sends the browser back through Keyhole's callback.
        page.wait_for_url(re.compile(r".*/console/connections/[0-9a-f-]{36}\?authorization=success$"))
        expect(page.get_by_text("Authorized: the provider granted access")).to_be_visible()
        expect(page.locator("dd", has_text="healthy").first).to_be_visible()
        _holds_no_secret(page, auth["client_secret"])
        watched.screenshot("connection-oauth-authorized")
        assert authserver.count("token:authorization_code") == 1
        assert watched.console_errors == []
        assert watched.failures == []
        assert all(url.startswith((console_server.url, authserver.url, "data:")) for url in watched.requests)
    finally:
        context.close()
