"""Tool-router sessions: spellings, per-prefix echo, and the account a session proxy call uses."""

from __future__ import annotations

from typing import Any

from .conftest import Composio, envelope


def test_session_spellings_and_prefix_forms(cio_a: Composio, httpbin_url: str, user_id: str) -> None:
    account = cio_a.account(httpbin_url, user_id=user_id)
    body = {
        "user_id": user_id,
        "toolkits": {"enable": ["api"]},
        "connected_accounts": {"api": account},  # the v3 form, accepted on both prefixes
        "manage_connections": {"enable": False},
        "workbench": {"enable_proxy_execution": False},
    }
    created = cio_a.post("/tool_router/session", body)
    assert created.status_code == 201, created.text
    session = created.json()
    config = session["config"]
    assert config["toolkits"] == {"enabled": ["api"]}
    assert config["connected_accounts"] == {"api": [account]}
    assert config["manage_connections"]["enabled"] is False
    assert config["workbench"] == {"proxy_execution_enabled": False}
    assert session["mcp"]["type"] == "http" and session["config_version"] == 1
    v3 = Composio(cio_a.client, "/api/v3").get(f"/tool_router/session/{session['session_id']}").json()
    assert v3["config"]["connected_accounts"] == {"api": account}


def test_account_selection_order(cio_a: Composio, httpbin_url: str, user_id: str) -> None:
    def session(**body: object) -> str:
        response = cio_a.post("/tool_router/session", {"user_id": user_id, **body})
        assert response.status_code == 201, response.text
        return str(response.json()["session_id"])

    def proxy(session_id: str) -> tuple[int, dict[str, Any]]:
        response = cio_a.post(
            f"/tool_router/session/{session_id}/proxy_execute",
            {"toolkit_slug": "api", "endpoint": "/anything", "method": "GET"},
        )
        return response.status_code, response.json()

    empty = session()
    status, body = proxy(empty)
    assert status == 400 and body["error"]["code"] == 1803
    assert body["error"]["message"].startswith("No connected account found for this user and toolkit")

    first_config = cio_a.auth_config()
    first = cio_a.account(f"{httpbin_url}/anything/first", user_id=user_id, config_id=first_config)
    second = cio_a.account(f"{httpbin_url}/anything/second", user_id=user_id)
    cio_a.account(f"{httpbin_url}/anything/other-user", user_id=user_id + "-other")

    status, body = proxy(empty)  # newest usable account of the user
    assert status == 200 and body["data"]["url"].endswith("/anything/second/anything")
    status, body = proxy(session(connected_accounts={"api": [first]}))  # pinned wins
    assert body["data"]["url"].endswith("/anything/first/anything")
    status, body = proxy(session(auth_configs={"api": first_config}))  # restricted to the auth config
    assert body["data"]["url"].endswith("/anything/first/anything")
    status, body = proxy(session(multi_account={"enable": True, "require_explicit_selection": True}))
    assert status == 400 and body["error"]["slug"] == "ToolRouter_MultipleConnectedAccounts"

    assert cio_a.patch(f"/connected_accounts/{second}/status", {"enabled": False}).status_code == 200
    status, body = proxy(empty)  # a disabled account is skipped
    assert body["data"]["url"].endswith("/anything/first/anything")

    other = cio_a.account(httpbin_url, user_id=user_id + "-third")
    refused = cio_a.post("/tool_router/session", {"user_id": user_id, "connected_accounts": {"api": [other]}})
    envelope(refused, 400, "ToolRouter_InvalidConnectedAccount")
    envelope(cio_a.post("/tool_router/session", {"user_id": user_id, "toolkits": {"enable": ["nope"]}}), 400)
    envelope(
        cio_a.post(
            "/tool_router/session/trs_unknown/proxy_execute",
            {"toolkit_slug": "api", "endpoint": "/", "method": "GET"},
        ),
        404,
    )
    excluded = session(toolkits={"disable": ["api"]})
    status, body = proxy(excluded)
    assert status == 400 and body["error"]["slug"] == "ToolRouter_ToolkitNotEnabled"
