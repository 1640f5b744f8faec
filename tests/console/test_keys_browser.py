"""Keys and users in Chromium, as an administrator would use them: add a user, mint their key and
copy it from the one page that shows it, find it by prefix, revoke it after confirming; a
member's menu has no such page. No console error or failed request on the way."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.sync_api import Browser, expect

from .conftest import ConsoleServer
from .support import assert_clean, watched_sign_in
from .test_security import fresh_address


def test_an_administrator_mints_copies_and_revokes_a_key(
    console_server: ConsoleServer, browser: Browser
) -> None:
    base = console_server.url
    org = console_server.server.bootstrap(f"console-keys-ui-{uuid.uuid4().hex[:8]}", "ida@keys-ui.test")
    context = browser.new_context(extra_http_headers={"X-Forwarded-For": fresh_address()})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    try:
        watched = watched_sign_in(context, base, org.user_api_key)
        page = watched.page
        page.get_by_role("link", name="Keys and users").click()
        page.get_by_role("link", name="Users", exact=True).click()
        page.get_by_label("Email").fill("Lee@Keys-UI.test")
        page.get_by_label("Role", exact=True).select_option("member")
        page.get_by_role("button", name="Add user").click()
        expect(page.get_by_role("status")).to_contain_text("The user is added")
        row = page.get_by_role("row").filter(has_text="lee@keys-ui.test")
        expect(row).to_contain_text("0")
        watched.screenshot("console-users")

        row.get_by_role("button", name="New key for lee@keys-ui.test").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("New user key")
        secret = page.locator("#new-key").inner_text()
        assert re.fullmatch(r"kh_u_[A-Za-z0-9_-]{43}", secret)
        page.get_by_role("button", name="Copy").click()
        expect(page.get_by_role("button", name="Copied")).to_be_visible()
        assert page.evaluate("() => navigator.clipboard.readText()") == secret
        watched.screenshot("console-key-created")
        with httpx.Client(base_url=base, timeout=30) as rest:
            me = rest.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
            assert me.json()["data"]["email"] == "lee@keys-ui.test"

        expect(page.get_by_role("link", name="Back to keys")).to_have_attribute("href", "/console/keys")
        page.go_back()  # the page before holds no secret, and the browser shows it anew
        expect(page.get_by_role("heading", level=1)).to_have_text("Users")
        assert secret not in page.content()
        page.get_by_role("link", name="Keys and users").click()
        assert secret not in page.content()
        page.get_by_label("Prefix starts with").fill(secret[:12])
        page.get_by_role("button", name="Filter").click()
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("lee@keys-ui.test")
        assert secret not in page.url and secret not in page.content()
        rows.get_by_role("link", name="Revoke…").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Revoke this key?")
        watched.screenshot("console-key-revoke")
        page.get_by_role("button", name="Revoke key").click()
        expect(page.get_by_role("status")).to_contain_text("The key is revoked")
        with httpx.Client(base_url=base, timeout=30) as rest:
            assert rest.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
        watched.screenshot("console-keys")

        page.get_by_role("link", name="Users", exact=True).click()
        page.get_by_role("link", name="Remove lee@keys-ui.test").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Remove lee@keys-ui.test?")
        watched.screenshot("console-user-remove")
        page.get_by_role("button", name="Remove user").click()
        expect(page.get_by_role("status")).to_contain_text("The user is removed")
        expect(page.get_by_role("row").filter(has_text="lee@keys-ui.test")).to_have_count(0)
        assert_clean(watched, base)
        # Shown once: in the answer that minted it, and in no other answer or header.
        holding = [answer for answer in watched.answers if secret in str(answer.headers)]
        holding += [answer for answer in watched.answers if answer.body and secret.encode() in answer.body]
        assert [answer.url for answer in holding] == [f"{base}/console/keys"]
    finally:
        context.close()


def test_a_member_has_no_keys_page(console_server: ConsoleServer, browser: Browser) -> None:
    base = console_server.url
    org = console_server.server.bootstrap(f"console-keys-member-{uuid.uuid4().hex[:8]}", "max@member.test")
    with httpx.Client(base_url=base, headers=org.bearer, timeout=30) as rest:
        user = rest.post("/api/organization/users", json={"email": "mia@member.test"}).json()["data"]
        key = rest.post(f"/api/organizations/{org.organization_id}/users/{user['id']}/keys").json()["data"][
            "value"
        ]
    context = browser.new_context(extra_http_headers={"X-Forwarded-For": fresh_address()})
    try:
        page = watched_sign_in(context, base, key).page
        expect(page.get_by_role("link", name="Connections")).to_be_visible()
        expect(page.get_by_role("link", name="Keys and users")).to_have_count(0)
        answer = page.goto(f"{base}/console/keys")
        assert answer is not None and answer.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    finally:
        context.close()
