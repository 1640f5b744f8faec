"""One vault, two views: a connection is a connected account, whichever dialect created it."""

from __future__ import annotations

import httpx

from conftest import KeyholeServer, Keys

from .conftest import TOKEN, Composio, envelope

REDACTED = "[REDACTED]"


def test_polytomic_connection_is_usable_as_a_connected_account(
    server: KeyholeServer, org_a: Keys, cio_a: Composio, httpbin_url: str
) -> None:
    with httpx.Client(base_url=server.url, headers=org_a.bearer, timeout=30) as api:
        created = api.post(
            "/api/connections",
            json={
                "name": "made by polytomic",
                "type": "api",
                "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": TOKEN}},
                "validate": False,
            },
        )
        assert created.status_code == 200, created.text
        connection_id = created.json()["data"]["id"]

        account = cio_a.get(f"/connected_accounts/{connection_id}")
        assert account.status_code == 200, account.text
        shown = account.json()
        assert shown["id"] == connection_id
        assert shown["user_id"] == "default" and shown["status"] == "ACTIVE"
        assert shown["state"] == {
            "authScheme": "BEARER_TOKEN",
            "val": {"status": "ACTIVE", "base_url": httpbin_url, "token": REDACTED},
        }
        assert shown["auth_config"]["id"] == ""
        listed = cio_a.get("/connected_accounts", params={"user_ids": "default", "limit": 1000})
        assert connection_id in [item["id"] for item in listed.json()["items"]]

        proxied = cio_a.ok({"endpoint": "/bearer", "method": "GET", "connected_account_id": connection_id})
        assert proxied["data"] == {"authenticated": True, "token": REDACTED}
        mismatch = cio_a.proxy(
            {"endpoint": "/get", "method": "GET", "connected_account_id": connection_id, "user_id": "ada"}
        )
        assert envelope(mismatch, 400, "ActionExecute_ConnectedAccountEntityIdMismatch")["code"] == 1812

        # Disabling through Composio turns the Polytomic proxy off too, and back.
        assert (
            cio_a.patch(f"/connected_accounts/{connection_id}/status", {"enabled": False}).status_code == 200
        )
        settings = api.get(f"/api/connections/{connection_id}/proxy/settings").json()["data"]
        assert settings["enabled"] is False
        assert (
            cio_a.patch(f"/connected_accounts/{connection_id}/status", {"enabled": True}).status_code == 200
        )
        assert api.get(f"/api/connections/{connection_id}/proxy/settings").json()["data"]["enabled"] is True

        # Deleting through Polytomic removes the account.
        assert api.delete(f"/api/connections/{connection_id}").status_code == 204
        envelope(cio_a.get(f"/connected_accounts/{connection_id}"), 404, "ConnectedAccount_NotFound")


def test_connected_account_is_usable_as_a_polytomic_connection(
    server: KeyholeServer, org_a: Keys, cio_a: Composio, httpbin_url: str, user_id: str
) -> None:
    account = cio_a.account(httpbin_url, user_id=user_id, alias="billing")
    with httpx.Client(base_url=server.url, headers=org_a.bearer, timeout=30) as api:
        connection = api.get(f"/api/connections/{account}")
        assert connection.status_code == 200, connection.text
        data = connection.json()["data"]
        assert data["type"]["id"] == "api"
        assert data["name"] == "billing"
        assert data["configuration"]["auth"] == {"type": "bearer", "token": REDACTED}
        assert TOKEN not in connection.text

        proxied = api.post(
            f"/api/connections/{account}/proxy", json={"request": {"method": "GET", "path": "/bearer"}}
        )
        assert proxied.status_code == 200, proxied.text
        assert proxied.json()["data"]["status"] == 200

        # A credential rotated through Composio is the one Polytomic calls with.
        rotated = cio_a.patch(
            f"/connected_accounts/{account}",
            {"connection": {"state": {"authScheme": "BEARER_TOKEN", "val": {"token": "rotated-" + TOKEN}}}},
        )
        assert rotated.status_code == 200, rotated.text
        api.put(f"/api/connections/{account}/proxy/settings", json={"enabled": True}).raise_for_status()
        # Scrubbing replaces the current secret only: the old token would be echoed in clear.
        echoed = api.post(
            f"/api/connections/{account}/proxy", json={"request": {"method": "GET", "path": "/bearer"}}
        ).json()["data"]
        assert '"token": "[REDACTED]"' in echoed["body"]
        assert TOKEN not in echoed["body"]
        scrub_off = api.put(
            f"/api/connections/{account}",
            json={
                "name": "billing",
                "configuration": {
                    "url": httpbin_url,
                    "auth": {"type": "bearer", "token": REDACTED},
                    "proxy": {"scrub_echoed_secrets": False},
                },
                "validate": False,
            },
        )
        assert scrub_off.status_code == 422, scrub_off.text  # not while keeping the stored token

        # Both views list it; the Composio one keeps the owner and alias.
        shown = cio_a.get(f"/connected_accounts/{account}").json()
        assert shown["user_id"] == user_id and shown["alias"] == "billing"
        assert account in [item["id"] for item in api.get("/api/connections").json()["data"]]


def test_accounts_are_invisible_across_organizations(
    cio_a: Composio, cio_b: Composio, httpbin_url: str, user_id: str
) -> None:
    account = cio_a.account(httpbin_url, user_id=user_id)
    envelope(cio_b.get(f"/connected_accounts/{account}"), 404, "ConnectedAccount_NotFound")
    envelope(cio_b.proxy({"endpoint": "/get", "method": "GET", "connected_account_id": account}), 404)
    assert account not in [item["id"] for item in cio_b.get("/connected_accounts").json()["items"]]
    config = cio_a.auth_config()
    envelope(cio_b.get(f"/auth_configs/{config}"), 404, "AuthConfig_NotFound")
    session = cio_a.post("/tool_router/session", {"user_id": user_id}).json()["session_id"]
    envelope(cio_b.get(f"/tool_router/session/{session}"), 404)
