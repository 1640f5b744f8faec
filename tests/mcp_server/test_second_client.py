"""A second, independent MCP client (FastMCP's, on its own HTTP stack) runs the happy path: the
server speaks the protocol, not one client's reading of it."""

from __future__ import annotations

from typing import Any

import mcp_types
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mcp import MCPError

from conftest import KeyholeServer

from .conftest import PAGE_ROWS, ROWS, Org
from .support import SECRET, TOOLS


def client_for(server: KeyholeServer, headers: dict[str, str]) -> Client[StreamableHttpTransport]:
    return Client(StreamableHttpTransport(server.url + "/mcp", headers=headers), timeout=60)


def shown(result: Any) -> str:
    """Everything a result shows an agent, as one string."""
    parts = [block.model_dump_json() for block in result.content]
    return "\n".join([*parts, repr(result.structured_content)])


async def test_the_happy_path_with_a_second_client(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, sqlite_connection: str
) -> None:
    async with client_for(mserver, acme.keys.bearer) as client:
        tools = await client.list_tools()
        assert [tool.name for tool in tools] == list(TOOLS)
        assert all(tool.input_schema.get("type") == "object" and tool.output_schema for tool in tools)

        described = await client.call_tool("keyhole_describe_connection", {"connection": "billing"})
        contract = described.structured_content
        assert described.is_error is False and contract is not None
        assert contract["connection"]["id"] == httpbin_connection and contract["connection"]["kind"] == "http"
        assert contract["http"]["locked_headers"] == ["Authorization"]
        assert contract["sql"] is None
        assert SECRET not in shown(described)

        got = await client.call_tool(
            "keyhole_http_get", {"connection": "billing", "path": "/anything", "query": {"a": [1, 2]}}
        )
        answer = got.structured_content
        assert got.is_error is False and answer is not None
        assert answer["status"] == 200 and answer["ok"] is True and answer["body_kind"] == "json"
        assert answer["body"]["args"] == {"a": ["1", "2"]}
        assert answer["body"]["headers"]["Authorization"] == "Bearer [REDACTED]"
        assert SECRET not in shown(got)

        first = await client.call_tool(
            "keyhole_sql_query",
            {
                "connection": "warehouse",
                "sql": "SELECT id, name, big FROM items ORDER BY id",
                "page_size": 25,
            },
        )
        page = first.structured_content
        assert first.is_error is False and page is not None
        assert page["status"] == "done" and page["fields"] == ["id", "name", "big"]
        assert page["row_count"] == ROWS
        assert page["rows"][:2] == [[0, "item 0", str(2**60)], [1, "item 1", str(2**60 + 1)]]  # exact digits
        assert [row[0] for row in page["rows"]] == list(range(25))
        assert page["next_page_token"]

        second = await client.call_tool(
            "keyhole_sql_results",
            {"query_id": page["query_id"], "page_token": page["next_page_token"], "page_size": 25},
        )
        following = second.structured_content
        assert second.is_error is False and following is not None
        assert following["query_id"] == page["query_id"] and following["row_count"] == ROWS
        # The rows right after the first page's (at most page_size; a page may end where one of
        # the server's stored pages of PAGE_ROWS rows ends).
        ids = [row[0] for row in following["rows"]]
        assert ids == list(range(25, 25 + len(ids))) and 0 < len(ids) <= 25
        assert ids[-1] >= PAGE_ROWS - 1 and following["next_page_token"]


async def test_a_tool_error_reaches_the_second_client(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str
) -> None:
    async with client_for(mserver, acme.keys.bearer) as client:
        result = await client.call_tool(
            "keyhole_http_get",
            {"connection": "billing", "path": "/anything", "headers": {"Authorization": "Bearer mine"}},
            raise_on_error=False,
        )
    assert result.is_error is True
    first = result.content[0]
    assert isinstance(first, mcp_types.TextContent) and first.text.startswith("locked_header: ")


async def test_the_second_client_needs_a_key(mserver: KeyholeServer) -> None:
    # The refusal's JSON-RPC error body reaches the client as the protocol error it is.
    with pytest.raises(MCPError) as refusal:
        async with client_for(mserver, {}) as client:
            await client.list_tools()
    assert refusal.value.error.code == -32000
    assert refusal.value.error.message.startswith("missing_credentials: ")
    assert refusal.value.error.data == {"key": "missing_credentials"}
