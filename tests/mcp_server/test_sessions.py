"""A Composio tool router session's MCP URL, driven by the official client: the session's
toolkits by slug, the account it pins, its own organization's key only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from conftest import KeyholeServer

from .conftest import Org
from .support import SESSION_TOOLS, over_http, refused, structured, text_of

USER = "agent-user"
TOKEN = "tok_session_R7mK2vX9pQ4w"  # the connected account's credential
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@dataclass(frozen=True)
class Session:
    account_id: str
    url: str  # the enabled session's MCP URL
    excluding_url: str  # a session of the same user with the toolkit disabled


@pytest.fixture(scope="module")
def composio(mserver: KeyholeServer, acme: Org) -> Iterator[httpx.Client]:
    """The Composio routes, as acme's user."""
    headers = {"x-api-key": acme.keys.user_api_key}
    with httpx.Client(base_url=mserver.url + "/api/v3.1", headers=headers, timeout=30) as client:
        yield client


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def session(composio: httpx.Client, httpbin_url: str) -> Session:
    config = _created(
        composio.post(
            "/auth_configs",
            json={
                "toolkit": {"slug": "api"},
                "auth_config": {"type": "use_custom_auth", "authScheme": "BEARER_TOKEN", "credentials": {}},
            },
        )
    )["auth_config"]["id"]

    def account(base_url: str) -> str:
        created = _created(
            composio.post(
                "/connected_accounts",
                json={
                    "auth_config": {"id": config},
                    "connection": {
                        "user_id": USER,
                        "state": {
                            "authScheme": "BEARER_TOKEN",
                            "val": {"status": "ACTIVE", "base_url": base_url, "token": TOKEN},
                        },
                    },
                },
            )
        )
        return str(created["id"])

    pinned = account(f"{httpbin_url}/anything/pinned")
    account(f"{httpbin_url}/anything/decoy")  # newer: what the session would pick without its pin
    enabled = _created(
        composio.post(
            "/tool_router/session",
            json={"user_id": USER, "toolkits": {"enable": ["api"]}, "connected_accounts": {"api": [pinned]}},
        )
    )
    excluding = _created(
        composio.post("/tool_router/session", json={"user_id": USER, "toolkits": {"disable": ["api"]}})
    )
    url = enabled["mcp"]["url"]
    assert url.endswith(f"/tool_router/{enabled['session_id']}/mcp")
    return Session(pinned, url, excluding["mcp"]["url"])


def key(org: Org) -> dict[str, str]:
    return {"x-api-key": org.keys.user_api_key}


async def test_the_session_offers_its_tools_and_toolkit(
    session: Session, acme: Org, mserver: KeyholeServer, httpbin_url: str
) -> None:
    assert session.url.startswith(mserver.url + "/")
    async with over_http(session.url, key(acme)) as client:
        listed = await client.list_tools()
        connections = structured(await client.call_tool("keyhole_list_connections", {}))
        described = structured(await client.call_tool("keyhole_describe_connection", {"connection": "api"}))
    assert [tool.name for tool in listed.tools] == list(SESSION_TOOLS)
    [only] = connections["connections"]
    assert connections["total"] == 1
    assert only["id"] == "api" and only["kind"] == "http"
    assert only["account_id"] == session.account_id
    assert only["base_url"].rstrip("/") == f"{httpbin_url}/anything/pinned"
    assert only["health"] == {"status": "healthy", "error": None}
    assert described["connection"]["account_id"] == session.account_id
    assert "Authorization" in described["http"]["locked_headers"]
    assert TOKEN not in str(described) and TOKEN not in str(connections)


async def test_a_call_uses_the_pinned_account_and_hides_its_credential(session: Session, acme: Org) -> None:
    async with over_http(session.url, key(acme)) as client:
        result = await client.call_tool("keyhole_http_get", {"connection": "api", "path": "/anything"})
    answer = structured(result)
    assert answer["status"] == 200
    assert httpx.URL(answer["body"]["url"]).path == "/anything/pinned/anything"  # the pin, not the newest
    # The pinned account's token went out: only its exact echo is redacted.
    assert answer["body"]["headers"]["Authorization"] == "Bearer [REDACTED]"
    assert TOKEN not in text_of(result)


async def test_the_session_reaches_nothing_else(
    session: Session, acme: Org, httpbin_connection: str, sqlite_connection: str
) -> None:
    async with over_http(session.url, key(acme)) as client:
        other_toolkit = await client.call_tool("keyhole_http_get", {"connection": "gmail", "path": "/"})
        unknown = await client.call_tool("keyhole_http_get", {"connection": "no-such-kit", "path": "/"})
        # The organization's own connections are not the session's, by name or by id.
        by_name = await client.call_tool("keyhole_http_get", {"connection": "billing", "path": "/get"})
        by_id = await client.call_tool("keyhole_http_get", {"connection": httpbin_connection, "path": "/get"})
        for name in ("keyhole_sql_query", "keyhole_sql_execute"):
            with pytest.raises(MCPError) as unknown_tool:
                await client.call_tool(name, {"connection": "warehouse", "sql": "SELECT 1"})
            assert unknown_tool.value.error.code == -32602 and name in unknown_tool.value.error.message
        with pytest.raises(MCPError) as unknown_tool:
            await client.call_tool("keyhole_sql_results", {"query_id": str(uuid.uuid4())})
        assert unknown_tool.value.error.code == -32602
    refused(other_toolkit, "ToolRouter_ToolkitNotEnabled")
    for result in (unknown, by_name, by_id):
        assert result.is_error, text_of(result)
        first = result.content[0]
        assert isinstance(first, types.TextContent)
        assert first.text.startswith(("ToolRouter_ToolkitNotEnabled: ", "Toolkit_NotFound: ")), first.text


async def test_a_session_without_the_toolkit_lists_no_connections(session: Session, acme: Org) -> None:
    async with over_http(session.excluding_url, key(acme)) as client:
        listed = structured(await client.call_tool("keyhole_list_connections", {}))
        excluded = await client.call_tool("keyhole_http_get", {"connection": "api", "path": "/get"})
        unknown = await client.call_tool("keyhole_http_get", {"connection": "no-such-kit", "path": "/get"})
    assert listed["connections"] == [] and listed["total"] == 0
    refused(excluded, "ToolRouter_ToolkitNotEnabled")
    refused(unknown, "Toolkit_NotFound")


async def test_another_organizations_key_cannot_connect(session: Session, rival: Org) -> None:
    with pytest.raises(Exception) as raised:  # an HTTP 404 refusal, inside the client's task groups
        async with over_http(session.url, key(rival)) as client:
            await client.list_tools()
    cause: BaseException = raised.value
    while isinstance(cause, BaseExceptionGroup) and cause.exceptions:  # the client's task groups
        cause = cause.exceptions[0]
    assert isinstance(cause, MCPError), repr(raised.value)
    assert cause.error.data == {"key": "ToolRouter_SessionNotFound"}
    response = httpx.post(session.url, json=LIST_TOOLS, headers={**ACCEPT, **key(rival)}, timeout=30)
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["data"]["key"] == "ToolRouter_SessionNotFound"
    assert error["message"].startswith("ToolRouter_SessionNotFound: ")


def test_refusals_before_the_sdk(session: Session, acme: Org, mserver: KeyholeServer) -> None:
    anonymous = httpx.post(session.url, json=LIST_TOOLS, headers=ACCEPT, timeout=30)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json()["error"]["data"]["key"]

    wrong = httpx.post(session.url, json=LIST_TOOLS, headers={**ACCEPT, "x-api-key": "not-a-key"}, timeout=30)
    assert wrong.status_code == 401, wrong.text

    unknown_url = f"{mserver.url}/tool_router/trs_{uuid.uuid4().hex}/mcp"
    unknown = httpx.post(unknown_url, json=LIST_TOOLS, headers={**ACCEPT, **key(acme)}, timeout=30)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["data"]["key"] == "ToolRouter_SessionNotFound"

    # The same request with the session's own key is served: the refusals above are about the key.
    served = httpx.post(session.url, json=LIST_TOOLS, headers={**ACCEPT, **key(acme)}, timeout=30)
    assert served.status_code == 200, served.text
    assert [tool["name"] for tool in served.json()["result"]["tools"]] == list(SESSION_TOOLS)
