"""The official client reaches the tools over streamable HTTP (kept small: the suites beside it
cover each tool)."""

from __future__ import annotations

from conftest import KeyholeServer

from .conftest import Org
from .support import SECRET, TOOLS, over_http, structured, text_of


async def test_an_agent_lists_and_calls(mserver: KeyholeServer, acme: Org, httpbin_connection: str) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        listed = await client.list_tools()
        assert [tool.name for tool in listed.tools] == list(TOOLS)
        result = await client.call_tool(
            "keyhole_http_get", {"connection": "billing", "path": "/anything", "query": {"a": [1, 2]}}
        )
        answer = structured(result)
        assert answer["status"] == 200 and answer["body_kind"] == "json"
        assert answer["body"]["headers"]["Authorization"] == "Bearer [REDACTED]"
        assert SECRET not in text_of(result)
