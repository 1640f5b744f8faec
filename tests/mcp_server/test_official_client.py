"""The official MCP client against a live server, on each way an agent connects: streamable HTTP
(the modern era and the legacy initialize handshake) and stdio through the ``keyhole mcp`` relay.

The upstreams are real: httpbin behind a bearer credential, a SQLite file with more rows than a
stored page, and, for the lossless JSON check, a loopback server that answers a fixed document.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from conftest import KeyholeServer

from .conftest import ROWS, Org
from .support import SECRET, TOOLS, count, download, over_http, over_stdio, refused, structured, text_of

READ_ONLY = {
    "keyhole_list_connections",
    "keyhole_describe_connection",
    "keyhole_list_connection_types",
    "keyhole_http_get",
    "keyhole_sql_query",
    "keyhole_sql_results",
}
DESTRUCTIVE = {"keyhole_http_request", "keyhole_sql_execute"}
TRANSPORTS = ("http", "legacy", "stdio")
ITEMS_SQL = "SELECT id, name, big, price FROM items ORDER BY id"
# Digits a double does not keep: an integer beyond 2^53 and a decimal longer than 17 digits.
LOSSLESS = '{"n": 12345678901234567890, "d": 3.14159265358979323846264, "small": 7, "half": 0.5}'


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def connect(transport: str, server: KeyholeServer, org: Org) -> AsyncIterator[Client]:
    if transport == "stdio":
        async with over_stdio(server.url, org.keys.user_api_key) as client:
            yield client
    else:
        mode = "legacy" if transport == "legacy" else "auto"
        async with over_http(server.url + "/mcp", org.keys.bearer, mode=mode) as client:
            # "auto" must settle on the modern era, not fall back to the handshake.
            era = HANDSHAKE_PROTOCOL_VERSIONS if transport == "legacy" else MODERN_PROTOCOL_VERSIONS
            assert client.protocol_version in era, client.protocol_version
            yield client


def links(result: types.CallToolResult) -> list[types.ResourceLink]:
    return [block for block in result.content if isinstance(block, types.ResourceLink)]


# -- tools/list ----------------------------------------------------------------------------------


async def test_tools_are_listed_with_hints_and_schemas(
    mserver: KeyholeServer, acme: Org, transport: str
) -> None:
    async with connect(transport, mserver, acme) as client:
        listed = await client.list_tools()
    assert [tool.name for tool in listed.tools] == list(TOOLS)
    for tool in listed.tools:
        hints = tool.annotations
        assert hints is not None, tool.name
        flags = (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint)
        assert all(flag is not None for flag in flags), (tool.name, hints)
        assert hints.read_only_hint is (tool.name in READ_ONLY), tool.name
        assert hints.destructive_hint is (tool.name in DESTRUCTIVE), tool.name
        assert tool.output_schema is not None and tool.output_schema.get("type") == "object", tool.name
        assert tool.input_schema.get("type") == "object", tool.name
        assert tool.input_schema.get("additionalProperties") is False, tool.name
    assert set(TOOLS) == READ_ONLY | DESTRUCTIVE


@pytest.mark.parametrize("style", ["bearer", "basic", "x-api-key"])
async def test_every_key_spelling_of_the_rest_api_is_accepted(
    mserver: KeyholeServer, acme: Org, style: str
) -> None:
    headers = {
        "bearer": acme.keys.bearer,
        "basic": acme.keys.basic,
        "x-api-key": {"x-api-key": acme.keys.user_api_key},
    }[style]
    async with over_http(mserver.url + "/mcp", headers) as client:
        listed = await client.list_tools()
    assert [tool.name for tool in listed.tools] == list(TOOLS)


# -- connections ---------------------------------------------------------------------------------


async def test_connections_are_the_callers_own(
    mserver: KeyholeServer,
    acme: Org,
    httpbin_connection: str,
    sqlite_connection: str,
    rival_connection: str,
    httpbin_url: str,
    transport: str,
) -> None:
    async with connect(transport, mserver, acme) as client:
        result = await client.call_tool("keyhole_list_connections", {})
        described = structured(
            await client.call_tool("keyhole_describe_connection", {"connection": "billing"})
        )
    listed = structured(result)
    by_name = {item["name"]: item for item in listed["connections"]}
    billing, warehouse = by_name["billing"], by_name["warehouse"]
    assert billing["id"] == httpbin_connection and warehouse["id"] == sqlite_connection
    assert billing["kind"] == "http" and warehouse["kind"] == "sql"
    assert billing["base_url"].rstrip("/") == httpbin_url
    assert warehouse["base_url"] is None
    for item in (billing, warehouse):
        assert isinstance(item["health"]["status"], str) and item["health"]["status"]
        assert isinstance(item["summary"], str) and item["summary"]
    assert "Authorization" in billing["summary"] and "read-only" in warehouse["summary"]
    assert rival_connection not in text_of(result)
    assert all(not item["name"].startswith("rival-") for item in listed["connections"])
    assert listed["total"] == len(listed["connections"])

    assert described["connection"]["id"] == httpbin_connection
    assert "Authorization" in described["http"]["locked_headers"]
    assert described["sql"] is None
    assert SECRET not in str(described)


# -- HTTP calls ----------------------------------------------------------------------------------


async def test_the_credential_is_injected_and_never_shown(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, transport: str
) -> None:
    async with connect(transport, mserver, acme) as client:
        bearer = await client.call_tool("keyhole_http_get", {"connection": "billing", "path": "/bearer"})
        echo = await client.call_tool(
            "keyhole_http_get",
            {
                "connection": httpbin_connection,
                "path": "/anything",
                "query": {"a": [1, 2], "b": "x"},
                "headers": {"X-Trace": "t-1"},
            },
        )
    answer = structured(bearer)
    assert answer["status"] == 200 and answer["ok"] is True
    assert answer["body"]["authenticated"] is True
    echoed = structured(echo)
    assert echoed["body_kind"] == "json" and echoed["body"]["method"] == "GET"
    assert echoed["body"]["headers"]["Authorization"] == "Bearer [REDACTED]"
    assert echoed["body"]["headers"]["X-Trace"] == "t-1"  # the caller's own headers go through
    assert echoed["body"]["args"] == {"a": ["1", "2"], "b": "x"}
    assert "a=1&a=2" in echoed["body"]["url"]
    for result in (bearer, echo):
        assert SECRET not in text_of(result)
        first = result.content[0]
        assert isinstance(first, types.TextContent) and first.text.startswith("HTTP 200 OK")


async def test_request_bodies_reach_the_upstream(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        posted = structured(
            await client.call_tool(
                "keyhole_http_request",
                {
                    "connection": "billing",
                    "method": "POST",
                    "path": "/anything",
                    "body": {"k": [1, 2], "s": "é"},
                },
            )
        )
        texted = structured(
            await client.call_tool(
                "keyhole_http_request",
                {
                    "connection": "billing",
                    "method": "PUT",
                    "path": "/anything",
                    "body_text": "id,name\n1,one\n",
                    "content_type": "text/csv",
                },
            )
        )
        both = await client.call_tool(
            "keyhole_http_request",
            {"connection": "billing", "method": "POST", "path": "/anything", "body": {}, "body_text": "x"},
        )
    assert posted["status"] == 200 and posted["body"]["method"] == "POST"
    assert posted["body"]["json"] == {"k": [1, 2], "s": "é"}
    assert posted["body"]["headers"]["Content-Type"].startswith("application/json")
    assert texted["body"]["method"] == "PUT"
    assert texted["body"]["data"] == "id,name\n1,one\n"
    assert texted["body"]["headers"]["Content-Type"] == "text/csv"
    refused(both, "invalid_arguments")


async def test_a_long_body_spills_to_a_download(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, httpbin_url: str
) -> None:
    direct = httpx.get(httpbin_url + "/html", timeout=30).content
    assert len(direct) > 1024
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        result = await client.call_tool(
            "keyhole_http_get", {"connection": "billing", "path": "/html", "max_inline_bytes": 1024}
        )
    answer = structured(result)
    assert answer["status"] == 200 and answer["body_kind"] == "text"
    assert answer["truncated"] is True and answer["body"] is None
    assert answer["body_preview"] == direct[:1024].decode()
    stored = answer["download"]
    assert stored["complete"] is True and stored["size_bytes"] == len(direct)
    assert stored["content_type"].startswith("text/html")
    assert download(stored["url"]).content == direct
    assert [link.uri for link in links(result)] == [stored["url"]]


async def test_a_binary_body_is_a_download(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, httpbin_url: str
) -> None:
    direct = httpx.get(httpbin_url + "/image/png", timeout=30).content
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        result = await client.call_tool("keyhole_http_get", {"connection": "billing", "path": "/image/png"})
    answer = structured(result)
    assert answer["status"] == 200 and answer["body_kind"] == "binary" and answer["body"] is None
    stored = answer["download"]
    assert stored["content_type"] == "image/png" and stored["complete"] is True
    fetched = download(stored["url"]).content
    assert fetched == direct and stored["size_bytes"] == len(fetched)
    [link] = links(result)
    assert link.uri == stored["url"] and link.mime_type == "image/png" and link.size == len(direct)


async def test_httpbins_json_echo_keeps_big_integers(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        answer = structured(
            await client.call_tool(
                "keyhole_http_request",
                {
                    "connection": "billing",
                    "method": "POST",
                    "path": "/anything",
                    "body_text": LOSSLESS,
                    "content_type": "application/json",
                },
            )
        )
    echoed = answer["body"]
    assert echoed["data"] == LOSSLESS  # what the upstream received, byte for byte
    assert echoed["json"]["n"] == "12345678901234567890"  # httpbin parsed it; the tool kept its digits
    assert echoed["json"]["small"] == 7 and echoed["json"]["half"] == 0.5


class _Fixed(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = LOSSLESS.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def verbatim_url() -> Iterator[str]:
    """An upstream that answers ``LOSSLESS`` as it is written (httpbin re-encodes what it echoes)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Fixed)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def lossless(mserver: KeyholeServer, verbatim_url: str) -> Iterator[Org]:
    """An organization of its own, so the shared ones keep their connections."""
    keys = mserver.bootstrap("lossless", "agent@lossless.test")
    with httpx.Client(base_url=mserver.url, headers=keys.bearer, timeout=30) as rest:
        org = Org(keys, rest)
        org.create(
            {"name": "verbatim", "type": "api", "configuration": {"url": verbatim_url}, "validate": False}
        )
        yield org


async def test_json_numbers_keep_every_digit(mserver: KeyholeServer, lossless: Org) -> None:
    async with over_http(mserver.url + "/mcp", lossless.keys.bearer) as client:
        result = await client.call_tool("keyhole_http_get", {"connection": "verbatim", "path": "/"})
    answer = structured(result)
    assert answer["body_kind"] == "json"
    assert answer["body"] == {
        "n": "12345678901234567890",
        "d": "3.14159265358979323846264",
        "small": 7,
        "half": 0.5,
    }


async def test_an_upstream_error_is_a_result(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        result = await client.call_tool("keyhole_http_get", {"connection": "billing", "path": "/status/404"})
    assert not result.is_error
    answer = structured(result)
    assert answer["status"] == 404 and answer["ok"] is False


# -- SQL -----------------------------------------------------------------------------------------


def expected_row(i: int) -> list[Any]:
    return [i, f"item {i}", str(2**60 + i), i / 4]


async def test_sql_pages_cover_every_row_once(
    mserver: KeyholeServer, acme: Org, sqlite_connection: str
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        first = structured(
            await client.call_tool(
                "keyhole_sql_query", {"connection": "warehouse", "sql": ITEMS_SQL, "page_size": 25}
            )
        )
        assert first["status"] == "done" and first["error"] is None
        assert first["fields"] == ["id", "name", "big", "price"]
        assert first["row_count"] == ROWS and first["truncated"] is False
        assert len(first["rows"]) == 25
        rows: list[list[Any]] = list(first["rows"])
        token = first["next_page_token"]
        pages = 1
        while token is not None:
            page = structured(
                await client.call_tool(
                    "keyhole_sql_results",
                    {"query_id": first["query_id"], "page_token": token, "page_size": 25},
                )
            )
            assert page["query_id"] == first["query_id"] and page["status"] == "done"
            assert 1 <= len(page["rows"]) <= 25
            rows.extend(page["rows"])
            token = page["next_page_token"]
            pages += 1
            assert pages <= ROWS, "the pages never end"
    assert rows == [expected_row(i) for i in range(ROWS)]
    for row in rows:
        assert isinstance(row[2], str) and int(row[2]) > 2**53
        assert isinstance(row[3], int | float) and not isinstance(row[3], bool)


async def test_sql_results_refuse_bad_tokens_and_unknown_queries(
    mserver: KeyholeServer, acme: Org, sqlite_connection: str
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        first = structured(
            await client.call_tool(
                "keyhole_sql_query", {"connection": "warehouse", "sql": ITEMS_SQL, "page_size": 10}
            )
        )
        query_id = first["query_id"]
        for token in ("garbled!!", "bm90IGpzb24", "WzEsMl0", "WyJ4IiwtMV0"):  # -, "not json", [1,2], ["x",-1]
            result = await client.call_tool(
                "keyhole_sql_results", {"query_id": query_id, "page_token": token}
            )
            refused(result, "invalid_page_token")
        # A token names its query and an offset inside a stored page: one past the page's end, or
        # another query's token, is refused rather than read as some other window.
        beyond = base64.urlsafe_b64encode(json.dumps([query_id, None, 10**9]).encode()).decode()
        refused(
            await client.call_tool("keyhole_sql_results", {"query_id": query_id, "page_token": beyond}),
            "invalid_page_token",
        )
        second = structured(
            await client.call_tool(
                "keyhole_sql_query", {"connection": "warehouse", "sql": ITEMS_SQL, "page_size": 10}
            )
        )
        assert first["next_page_token"] is not None
        crossed = await client.call_tool(
            "keyhole_sql_results", {"query_id": second["query_id"], "page_token": first["next_page_token"]}
        )
        refused(crossed, "invalid_page_token")
        unknown = await client.call_tool("keyhole_sql_results", {"query_id": str(uuid.uuid4())})
    refused(unknown, "query_not_found")


async def test_a_query_of_another_org_is_not_found(
    mserver: KeyholeServer, acme: Org, rival: Org, sqlite_connection: str
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        mine = structured(
            await client.call_tool("keyhole_sql_query", {"connection": "warehouse", "sql": "SELECT 1 AS one"})
        )
    assert mine["rows"] == [[1]]
    async with over_http(mserver.url + "/mcp", rival.keys.bearer) as client:
        theirs = await client.call_tool("keyhole_sql_results", {"query_id": mine["query_id"]})
    refused(theirs, "query_not_found")


async def test_sql_query_never_writes(mserver: KeyholeServer, acme: Org, ledger: tuple[str, Path]) -> None:
    """On a connection that allows writes: keyhole_sql_query still cannot, keyhole_sql_execute can."""
    name, path = ledger
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        result = await client.call_tool(
            "keyhole_sql_query", {"connection": name, "sql": "INSERT INTO notes VALUES (1)"}
        )
        assert count(path, "notes") == 0
        written = await client.call_tool(
            "keyhole_sql_execute", {"connection": name, "sql": "INSERT INTO notes VALUES (2)"}
        )
    failed = structured(result)
    assert failed["status"] == "failed" and failed["rows"] == []
    assert failed["error"] is not None and failed["error"]["code"] and failed["error"]["message"]
    assert failed["next_page_token"] is None
    assert structured(written)["status"] == "done" and count(path, "notes") == 1


# -- refusals ------------------------------------------------------------------------------------


async def test_refusals_are_tool_errors(
    mserver: KeyholeServer,
    acme: Org,
    httpbin_connection: str,
    sqlite_connection: str,
    rival_connection: str,
    transport: str,
) -> None:
    get = "keyhole_http_get"
    async with connect(transport, mserver, acme) as client:
        locked = await client.call_tool(
            get, {"connection": "billing", "path": "/bearer", "headers": {"Authorization": "Bearer mine"}}
        )
        dotted = await client.call_tool(get, {"connection": "billing", "path": "/../etc"})
        elsewhere = await client.call_tool(get, {"connection": "billing", "path": "//evil.example/x"})
        foreign = await client.call_tool(get, {"connection": rival_connection, "path": "/get"})
        database = await client.call_tool(get, {"connection": "warehouse", "path": "/get"})
        api = await client.call_tool("keyhole_sql_query", {"connection": "billing", "sql": "SELECT 1"})
        extra = await client.call_tool(get, {"connection": "billing", "path": "/get", "verb": "GET"})
        with pytest.raises(MCPError):
            await client.call_tool("keyhole_no_such_tool", {})
        # The session still serves calls after a protocol error.
        after = await client.call_tool(get, {"connection": "billing", "path": "/get"})
    refused(locked, "locked_header")
    refused(dotted, "invalid_proxy_request")
    refused(elsewhere, "invalid_proxy_request")
    refused(foreign, "connection_not_found")
    refused(database, "not_an_http_connection")
    refused(api, "not_a_sql_connection")
    refused(extra, "invalid_arguments")
    assert structured(after)["status"] == 200
    for result in (locked, dotted, elsewhere, foreign):
        assert SECRET not in text_of(result) and result.structured_content is None


# -- audit ---------------------------------------------------------------------------------------


async def test_calls_are_audited_as_mcp(mserver: KeyholeServer, acme: Org, httpbin_connection: str) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        answer = structured(
            await client.call_tool("keyhole_http_get", {"connection": "billing", "path": "/get"})
        )
    call_id = answer["call_id"]
    deadline = time.monotonic() + 15
    found: dict[str, Any] | None = None
    while found is None and time.monotonic() < deadline:
        response = acme.rest.get(f"/api/connections/{httpbin_connection}/proxy/calls", params={"limit": 200})
        assert response.status_code == 200, response.text
        found = next((item for item in response.json()["data"] if item["proxyCallId"] == call_id), None)
        if found is None:
            await asyncio.sleep(0.1)
    assert found is not None, f"call {call_id} was never audited"
    assert found["dialect"] == "mcp"
    assert found["method"] == "GET" and found["path"].startswith("/get") and found["status"] == 200
    assert found["principalId"] == acme.keys.user_id


async def test_the_listings_filter_and_page(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, sqlite_connection: str
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        http_only = structured(await client.call_tool("keyhole_list_connections", {"kind": "http"}))
        found = structured(await client.call_tool("keyhole_list_connections", {"search": "WAREHOUSE"}))
        seen: list[str] = []
        offset: int | None = 0
        while offset is not None:
            page = structured(
                await client.call_tool("keyhole_list_connections", {"limit": 1, "offset": offset})
            )
            assert len(page["connections"]) <= 1
            seen += [item["id"] for item in page["connections"]]
            offset = page["next_offset"]
        types_page = structured(
            await client.call_tool("keyhole_list_connection_types", {"kind": "sql", "limit": 2})
        )
    assert http_only["connections"] and all(item["kind"] == "http" for item in http_only["connections"])
    assert "warehouse" not in [item["name"] for item in http_only["connections"]]
    assert [item["name"] for item in found["connections"]] == ["warehouse"] and found["total"] == 1
    assert len(seen) == len(set(seen)) == page["total"]
    assert {httpbin_connection, sqlite_connection} <= set(seen)
    assert len(types_page["types"]) == 2 and all(item["kind"] == "sql" for item in types_page["types"])
    assert types_page["total"] > 2 and types_page["next_offset"] == 2
