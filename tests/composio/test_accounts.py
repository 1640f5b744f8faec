"""Connected accounts and auth configs over raw HTTP: aliases, status, filters, paging."""

from __future__ import annotations

from .conftest import TOKEN, Composio, envelope

REDACTED = "[REDACTED]"


def test_alias_is_unique_per_user_and_toolkit(cio_a: Composio, httpbin_url: str, user_id: str) -> None:
    first = cio_a.account(httpbin_url, user_id=user_id, alias="work")
    config = cio_a.auth_config()
    clash = cio_a.post(
        "/connected_accounts",
        {
            "auth_config": {"id": config},
            "connection": {
                "user_id": user_id,
                "alias": "work",
                "state": {"authScheme": "BEARER_TOKEN", "val": {"token": TOKEN, "base_url": httpbin_url}},
            },
        },
    )
    envelope(clash, 409, "ConnectedAccount_AliasConflict")
    cio_a.account(httpbin_url, user_id=user_id + "-other", alias="work")  # another user may
    second = cio_a.account(httpbin_url, user_id=user_id)
    envelope(cio_a.patch(f"/connected_accounts/{second}", {"alias": "work"}), 409)
    assert cio_a.patch(f"/connected_accounts/{first}", {"alias": "work"}).status_code == 200  # its own


def test_auth_config_lifecycle(cio_a: Composio, httpbin_url: str, user_id: str) -> None:
    config = cio_a.auth_config()
    account = cio_a.account(httpbin_url, user_id=user_id, config_id=config)
    assert cio_a.get(f"/auth_configs/{config}").json()["no_of_connections"] == 1
    assert cio_a.patch(f"/auth_configs/{config}/DISABLED", {}).status_code == 200
    assert cio_a.get(f"/auth_configs/{config}").json()["status"] == "DISABLED"
    hidden = cio_a.get("/auth_configs", params={"show_disabled": "false", "limit": 1000}).json()["items"]
    assert config not in [item["id"] for item in hidden]
    envelope(
        cio_a.post(
            "/connected_accounts",
            {
                "auth_config": {"id": config},
                "connection": {"state": {"authScheme": "BEARER_TOKEN", "val": {}}},
            },
        ),
        400,
        "AuthConfig_Disabled",
    )
    assert cio_a.patch(f"/auth_configs/{config}/ENABLED", {}).status_code == 200
    mismatch = cio_a.post(
        "/connected_accounts",
        {
            "auth_config": {"id": config},
            "connection": {"state": {"authScheme": "BASIC", "val": {"username": "u"}}},
        },
    )
    envelope(mismatch, 400, "InvalidConnectionData")
    initiated = cio_a.post(
        "/connected_accounts",
        {
            "auth_config": {"id": config},
            "connection": {"state": {"authScheme": "BEARER_TOKEN", "val": {"status": "INITIATED"}}},
        },
    )
    assert envelope(initiated, 400, "ConnectedAccount_BadRequest")["code"] == 600
    envelope(
        cio_a.post("/connected_accounts/link", {"auth_config_id": config, "user_id": user_id}),
        400,
        "ConnectedAccount_LinkUnavailable",
    )
    assert cio_a.delete(f"/auth_configs/{config}").status_code == 200
    envelope(cio_a.get(f"/auth_configs/{config}"), 404, "AuthConfig_NotFound")
    # The account keeps its own credential and still works.
    assert (
        cio_a.ok({"endpoint": "/bearer", "method": "GET", "connected_account_id": account})["status"] == 200
    )


def test_credential_update_merges_into_the_stored_val(
    cio_a: Composio, httpbin_url: str, user_id: str
) -> None:
    config = cio_a.auth_config("BASIC")
    account = cio_a.account(
        httpbin_url,
        user_id=user_id,
        scheme="BASIC",
        config_id=config,
        val={"username": "ada", "password": "pw-1"},
    )
    assert (
        cio_a.ok({"endpoint": "/basic-auth/ada/pw-1", "method": "GET", "connected_account_id": account})[
            "status"
        ]
        == 200
    )
    patched = cio_a.patch(
        f"/connected_accounts/{account}",
        {"connection": {"state": {"authScheme": "BASIC", "val": {"password": "pw-2"}}}},
    )
    assert patched.status_code == 200, patched.text
    assert (
        cio_a.ok({"endpoint": "/basic-auth/ada/pw-2", "method": "GET", "connected_account_id": account})[
            "status"
        ]
        == 200
    )
    shown = cio_a.get(f"/connected_accounts/{account}").json()["state"]["val"]
    assert shown == {"status": "ACTIVE", "base_url": httpbin_url, "username": "ada", "password": REDACTED}


def test_list_filters_and_paging(cio_a: Composio, httpbin_url: str, user_id: str) -> None:
    made = [cio_a.account(httpbin_url, user_id=user_id) for _ in range(3)]
    first = cio_a.get("/connected_accounts", params={"user_ids": user_id, "limit": 2}).json()
    assert first["total_items"] == 3 and first["total_pages"] == 2 and first["current_page"] == 1
    second = cio_a.get(
        "/connected_accounts", params={"user_ids": user_id, "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert second["next_cursor"] is None and second["current_page"] == 2
    seen = [item["id"] for item in first["items"] + second["items"]]
    assert seen == list(reversed(made))  # newest first
    oldest = cio_a.get(
        "/connected_accounts", params={"user_ids": user_id, "order_direction": "asc", "limit": 1}
    ).json()
    assert oldest["items"][0]["id"] == made[0]
    by_id = cio_a.get("/connected_accounts", params={"connected_account_ids": f"{made[1]},nope"}).json()
    assert [item["id"] for item in by_id["items"]] == [made[1]]
    none = cio_a.get("/connected_accounts", params={"user_ids": user_id, "toolkit_slugs": "github"}).json()
    assert none["items"] == [] and none["total_items"] == 0
    assert all(TOKEN not in str(item) for item in first["items"])
