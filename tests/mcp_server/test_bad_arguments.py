"""Bad arguments to every tool: missing, unknown, of the wrong JSON type, too long or too large,
nested garbage, null, hostile paths and headers. Each is a tool error (``isError``) whose text
starts with an error key an agent can act on; never ``internal_error``, never a protocol error,
never a traceback in the server log, and nothing written to a database.

The Hypothesis tests send arbitrary JSON objects (and valid arguments with arbitrary parts) to
each tool, and the credential header under every spelling an upstream may read as it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import mcp_types as types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from conftest import KeyholeServer

from .conftest import ROWS, Org
from .support import SECRET, TOOLS, count, over_http, refused, structured, text_of

# Keys a bad call may be refused with; anything else (internal_error above all) is a failure.
KNOWN_KEYS = frozenset(
    {
        "invalid_arguments",
        "invalid_proxy_request",
        "invalid_request",
        "locked_header",
        "locked_query",
        "blocked_header",
        "connection_not_found",
        "not_an_http_connection",
        "not_a_sql_connection",
        "invalid_query",
        "query_not_found",
        "invalid_page_token",
        "request_body_too_large",
    }
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run: a red CI run replays
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KEY_SECRET = "kk_mcp_Hd72LwQ9xZ4cV1"  # the credential of the header-key connection
_POST = {"connection": "billing", "path": "/anything", "method": "POST"}


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_connection(acme: Org, httpbin_url: str) -> str:
    """httpbin behind an API key header (``X-Api-Key``): a credential name with a dash."""
    return acme.create(
        {
            "name": f"keyed-{uuid.uuid4().hex[:6]}",
            "type": "api",
            "configuration": {
                "url": httpbin_url,
                "auth": {"type": "header", "name": "X-Api-Key", "value": KEY_SECRET},
            },
            "validate": False,
        }
    )


@pytest.fixture(scope="module")
async def query_id(mserver: KeyholeServer, acme: Org, sqlite_connection: str) -> str:
    """A finished query of ``acme`` with more than one page."""
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        result = await client.call_tool(
            "keyhole_sql_query", {"connection": "warehouse", "sql": "SELECT id FROM items", "page_size": 2}
        )
    answer = structured(result)
    assert answer["status"] == "done" and answer["next_page_token"] is not None
    return str(answer["query_id"])


def valid_arguments(query_id: str) -> dict[str, dict[str, Any]]:
    """Arguments each tool accepts: every bad case below is one of these made bad in one way."""
    return {
        "keyhole_list_connections": {"kind": "http", "search": "bill", "limit": 10, "offset": 0},
        "keyhole_describe_connection": {"connection": "billing"},
        "keyhole_list_connection_types": {"kind": "sql", "search": "sql", "limit": 5, "offset": 0},
        "keyhole_http_get": {
            "connection": "billing",
            "path": "/anything",
            "method": "GET",
            "query": {"a": [1, "b"], "c": True},
            "headers": {"X-Trace": "1"},
            "max_inline_bytes": 4096,
        },
        "keyhole_http_request": {
            "connection": "billing",
            "path": "/anything",
            "method": "POST",
            "query": {"a": 1.5},
            "headers": {"X-Trace": "1"},
            "body": {"a": [1, None, "x"]},
            "max_inline_bytes": 4096,
        },
        "keyhole_sql_query": {
            "connection": "warehouse",
            "sql": "SELECT id FROM items WHERE id < 3",
            "page_size": 2,
            "wait_ms": 5000,
        },
        "keyhole_sql_execute": {
            "connection": "warehouse",
            "sql": "SELECT 1",
            "page_size": 1,
            "wait_ms": 5000,
        },
        "keyhole_sql_results": {"query_id": query_id, "page_size": 1, "wait_ms": 5000},
    }


# Each tool's fields by JSON type, and the ones it requires / lets be null.
INTEGER_FIELDS = {
    "keyhole_list_connections": ("limit", "offset"),
    "keyhole_list_connection_types": ("limit", "offset"),
    "keyhole_http_get": ("max_inline_bytes",),
    "keyhole_http_request": ("max_inline_bytes",),
    "keyhole_sql_query": ("page_size", "wait_ms"),
    "keyhole_sql_execute": ("page_size", "wait_ms"),
    "keyhole_sql_results": ("page_size", "wait_ms"),
}
STRING_FIELDS = {
    "keyhole_list_connections": ("kind", "search"),
    "keyhole_describe_connection": ("connection",),
    "keyhole_list_connection_types": ("kind", "search"),
    "keyhole_http_get": ("connection", "path", "method"),
    "keyhole_http_request": ("connection", "path", "method", "body_text", "content_type"),
    "keyhole_sql_query": ("connection", "sql"),
    "keyhole_sql_execute": ("connection", "sql"),
    "keyhole_sql_results": ("query_id", "page_token"),
}
OBJECT_FIELDS = {
    "keyhole_http_get": ("query", "headers"),
    "keyhole_http_request": ("query", "headers"),
}
REQUIRED = {
    "keyhole_list_connections": (),
    "keyhole_describe_connection": ("connection",),
    "keyhole_list_connection_types": (),
    "keyhole_http_get": ("connection", "path"),
    "keyhole_http_request": ("connection", "path"),
    "keyhole_sql_query": ("connection", "sql"),
    "keyhole_sql_execute": ("connection", "sql"),
    "keyhole_sql_results": ("query_id",),
}
NULLABLE = frozenset(
    {"kind", "search", "query", "headers", "body", "body_text", "content_type", "page_token"}
)
# (field, the longest accepted length): one character more is refused.
MAX_LENGTHS = {
    "connection": 255,
    "path": 8192,
    "search": 255,
    "sql": 1_000_000,
    "query_id": 64,
    "page_token": 4096,
    "content_type": 255,
}
# (field, values out of range)
OUT_OF_RANGE = {
    "limit": (0, -1, 201, 2**64, -(2**70)),
    "offset": (-1, 1_000_001, 10**30),
    "max_inline_bytes": (0, 1023, 65_537, -1, 10**30),
    "page_size": (0, -5, 1001, 2**63),
    "wait_ms": (-1, 60_001, 10**18),
}
WRONG_FOR_INTEGER: tuple[Any, ...] = (True, False, "5", "1024", 5.0, 4096.5, [5], {"value": 5}, "")
WRONG_FOR_STRING: tuple[Any, ...] = (5, 0, True, 1.5, ["billing"], {"name": "billing"}, [])
WRONG_FOR_OBJECT: tuple[Any, ...] = ("a=1", ["a", "b"], 5, True, [["X-A", "b"]])


def field_names(tool: str) -> tuple[str, ...]:
    return (
        *STRING_FIELDS.get(tool, ()),
        *INTEGER_FIELDS.get(tool, ()),
        *OBJECT_FIELDS.get(tool, ()),
        *(("body",) if tool == "keyhole_http_request" else ()),
    )


def type_cases(tool: str, valid: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(label, field, arguments)`` refused as invalid_arguments, the message naming ``field``."""
    for field in REQUIRED[tool]:
        yield f"missing {field}", field, {k: v for k, v in valid.items() if k != field}
    for extra in ("unexpected", "Connection", "", "connection ", "__proto__", "path\x00"):
        if extra not in valid:
            yield f"unknown key {extra!r}", extra, {**valid, extra: "billing"}
    for field in field_names(tool):
        if field not in NULLABLE:
            yield f"null {field}", field, {**valid, field: None}
    for field in INTEGER_FIELDS.get(tool, ()):
        for value in (*WRONG_FOR_INTEGER, *OUT_OF_RANGE[field]):
            yield f"{field}={value!r}", field, {**valid, field: value}
    for field in STRING_FIELDS.get(tool, ()):
        for value in WRONG_FOR_STRING:
            yield f"{field}={value!r}", field, {**valid, field: value}
        if field in MAX_LENGTHS:
            too_long = "/" + "a" * MAX_LENGTHS[field] if field == "path" else "a" * (MAX_LENGTHS[field] + 1)
            yield f"{field} too long", field, {**valid, field: too_long}
    for field in OBJECT_FIELDS.get(tool, ()):
        for value in WRONG_FOR_OBJECT:
            yield f"{field}={value!r}", field, {**valid, field: value}
    if tool in ("keyhole_http_get", "keyhole_http_request"):
        yield "method lowercase", "method", {**valid, "method": "get"}
        yield "method TRACE", "method", {**valid, "method": "TRACE"}
        yield "method CONNECT", "method", {**valid, "method": "CONNECT"}
        yield "query nested object", "query", {**valid, "query": {"a": {"b": 1}}}
        yield "query nested array", "query", {**valid, "query": {"a": [[1]]}}
        yield "query null in array", "query", {**valid, "query": {"a": [None]}}
        yield "header value a number", "headers", {**valid, "headers": {"X-A": 5}}
        yield "header value null", "headers", {**valid, "headers": {"X-A": None}}
        yield "header value an array", "headers", {**valid, "headers": {"X-A": ["a", "b"]}}
        yield "header name empty", "headers", {**valid, "headers": {"": "x"}}
        yield "header name too long", "headers", {**valid, "headers": {"X" * 257: "x"}}
        yield "header value too long", "headers", {**valid, "headers": {"X-A": "v" * 8193}}
        yield "101 headers", "headers", {**valid, "headers": {f"X-H{i}": "v" for i in range(101)}}
    if tool == "keyhole_http_get":
        yield "method POST on the read tool", "method", {**valid, "method": "POST"}
        yield "a body on the read tool", "body", {**valid, "body": {"a": 1}}
    if tool == "keyhole_http_request":
        yield "body a string", "body", {**valid, "body": "text"}
        yield "body a number", "body", {**valid, "body": 5}
        yield "body true", "body", {**valid, "body": True}
    if tool in ("keyhole_list_connections", "keyhole_list_connection_types"):
        yield "kind unknown", "kind", {**valid, "kind": "graphql"}
        yield "kind uppercase", "kind", {**valid, "kind": "HTTP"}


def first_text(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


def error_key(result: types.CallToolResult) -> str:
    """The error key a tool error starts with (and fails unless it is a known one)."""
    assert result.is_error, text_of(result)
    text = first_text(result)
    match = re.match(r"([A-Za-z_]+): \S", text)
    assert match, text
    assert match[1] != "internal_error", text
    assert match[1] in KNOWN_KEYS, text
    return match[1]


def internal_errors(server: KeyholeServer) -> float:
    """How many tool calls ended in internal_error since the server started (its metrics)."""
    metrics = httpx.get(server.url + "/metrics", timeout=30).text
    pattern = re.compile(r'^keyhole_mcp_tool_calls_total\{[^}]*outcome="internal_error"[^}]*\} (\S+)$', re.M)
    return sum(float(value) for value in pattern.findall(metrics))


def log_since(server: KeyholeServer, start: int) -> str:
    return server.logs()[start:]


def assert_quiet_log(server: KeyholeServer, start: int) -> None:
    """No traceback and no unexpected tool failure in what the server logged since ``start``."""
    logged = log_since(server, start)
    assert "Traceback" not in logged, logged[-4000:]
    assert "failed unexpectedly" not in logged, logged[-4000:]


# -- every tool, every way of being wrong --------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS)
async def test_the_valid_arguments_work(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, query_id: str, tool: str
) -> None:
    """The baseline each bad case departs from is accepted, so a refusal is the bad part's."""
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        answer = structured(await client.call_tool(tool, valid_arguments(query_id)[tool]))
    assert answer


@pytest.mark.parametrize("tool", TOOLS)
async def test_bad_arguments_are_refused_with_invalid_arguments(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, query_id: str, tool: str
) -> None:
    start = len(mserver.logs())
    valid = valid_arguments(query_id)[tool]
    cases = list(type_cases(tool, valid))
    assert len(cases) > 10
    failures: list[str] = []
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        for label, field, arguments in cases:
            result = await client.call_tool(tool, arguments)
            text = first_text(result)
            if not (result.is_error and text.startswith("invalid_arguments: ")):
                failures.append(f"{label}: {text[:300]}")
            elif field and field.strip() and field.strip("\x00") not in text:
                failures.append(f"{label}: the message does not name {field!r}: {text[:300]}")
    assert not failures, "\n".join(failures)
    assert_quiet_log(mserver, start)


HOSTILE_PATHS = [
    "/anything/\x00",
    "/anything\r\nX-Injected: 1",
    "/anything\n",
    "/anything/%0d%0aX-Injected:%201",
    "/anything/%00",
    "/anything/%2e%2e/admin",
    "/anything/%2E%2E",
    "/anything/%252e%252e/x",
    "/anything/.%2e/x",
    "/anything/../../etc/passwd",
    "/..",
    "/./anything",
    "anything",
    "",
    "//evil.example/x",
    "/%2f%2fevil.example",
    "http://evil.example/",
    "/anything?x=1",
    "/anything#fragment",
    "/anything\\..\\x",
    "/anything/%",
    "/anything/%zz",
    "/anything\t",
]
# Unicode that is not '.', '/' or a control character: sent percent-encoded, under /anything.
ODD_BUT_SAFE_PATHS = [
    "/anything/\u202egnp.exe",
    "/anything/\uff0e\uff0e/x",  # fullwidth full stops
    "/anything/\u2025/x",  # two dot leader
    "/anything/%C0%AE%C0%AE/x",  # overlong UTF-8 dots: not dots to any modern server
    "/anything/caf\u00e9/\U0001f600",
    "/anything/ a b ",
]


@pytest.mark.parametrize("tool", ["keyhole_http_get", "keyhole_http_request"])
async def test_hostile_paths_are_refused(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, tool: str
) -> None:
    start = len(mserver.logs())
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        for path in HOSTILE_PATHS:
            result = await client.call_tool(tool, {"connection": "billing", "path": path})
            assert error_key(result) in ("invalid_proxy_request", "invalid_arguments"), (
                path,
                text_of(result),
            )
        for path in ODD_BUT_SAFE_PATHS:
            answer = structured(await client.call_tool(tool, {"connection": "billing", "path": path}))
            # httpbin answers under /anything: the path never left the connection's base.
            assert answer["status"] == 200, (path, answer)
            assert httpx.URL(answer["body"]["url"]).path.startswith("/anything/"), (path, answer["body"])
    assert_quiet_log(mserver, start)


HOSTILE_HEADERS: list[tuple[dict[str, str], str]] = [
    ({"Authorization": "Bearer mine"}, "locked_header"),
    ({"authorization": "Bearer mine"}, "locked_header"),
    ({"AUTHORIZATION": "Bearer mine"}, "locked_header"),
    ({"Host": "evil.example"}, "blocked_header"),
    ({"X-Forwarded-For": "10.0.0.1"}, "blocked_header"),
    ({"X-Forwarded-Anything": "1"}, "blocked_header"),
    ({"Proxy-Authorization": "Basic eA=="}, "blocked_header"),
    ({"Content-Length": "0"}, "blocked_header"),
    ({"Transfer-Encoding": "chunked"}, "blocked_header"),
    ({"Cookie": "a=b"}, "blocked_header"),
    ({"X-HTTP-Method-Override": "DELETE"}, "blocked_header"),
    ({"X-A\r\nX-Injected": "1"}, "invalid_proxy_request"),
    ({"X-A\n": "1"}, "invalid_proxy_request"),
    ({"X-A": "1\r\nX-Injected: 1"}, "invalid_proxy_request"),
    ({"X-A": "1\nX-Injected: 1"}, "invalid_proxy_request"),
    ({"X-A": "1\rX-Injected: 1"}, "invalid_proxy_request"),
    ({"X-A": "1\x00"}, "invalid_proxy_request"),
    ({"X-A": "\x7f"}, "invalid_proxy_request"),
    ({"X A": "1"}, "invalid_proxy_request"),
    ({"X-A:": "1"}, "invalid_proxy_request"),
    ({" X-A": "1"}, "invalid_proxy_request"),
    ({"X-\u00e9": "1"}, "invalid_proxy_request"),
    ({"X-A\x00": "1"}, "invalid_proxy_request"),
]


@pytest.mark.parametrize("tool", ["keyhole_http_get", "keyhole_http_request"])
async def test_hostile_headers_are_refused(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, tool: str
) -> None:
    start = len(mserver.logs())
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        for headers, key in HOSTILE_HEADERS:
            result = await client.call_tool(
                tool, {"connection": "billing", "path": "/anything", "headers": headers}
            )
            assert error_key(result) == key, (headers, text_of(result))
            assert SECRET not in text_of(result)
        # The most the contract allows is still a call (httpbin may find them too many).
        many = {f"X-H{i}": "v" for i in range(100)}
        answer = structured(
            await client.call_tool(tool, {"connection": "billing", "path": "/anything", "headers": many})
        )
        assert answer["status"] in (200, 431)
    assert_quiet_log(mserver, start)


async def test_bad_references_are_refused(
    mserver: KeyholeServer,
    acme: Org,
    rival: Org,
    httpbin_connection: str,
    sqlite_connection: str,
    rival_connection: str,
    query_id: str,
) -> None:
    start = len(mserver.logs())
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("keyhole_describe_connection", {"connection": "nope"}, "connection_not_found"),
        ("keyhole_describe_connection", {"connection": rival_connection}, "connection_not_found"),
        ("keyhole_describe_connection", {"connection": "billing\x00"}, "connection_not_found"),
        ("keyhole_describe_connection", {"connection": "../billing"}, "connection_not_found"),
        ("keyhole_describe_connection", {"connection": "%62illing"}, "connection_not_found"),
        ("keyhole_describe_connection", {"connection": "' OR 1=1 --"}, "connection_not_found"),
        ("keyhole_describe_connection", {"connection": ""}, "invalid_arguments"),
        ("keyhole_http_get", {"connection": rival_connection, "path": "/anything"}, "connection_not_found"),
        ("keyhole_http_get", {"connection": "warehouse", "path": "/anything"}, "not_an_http_connection"),
        (
            "keyhole_http_request",
            {"connection": "warehouse", "path": "/x", "method": "DELETE"},
            "not_an_http_connection",
        ),
        ("keyhole_sql_query", {"connection": "billing", "sql": "SELECT 1"}, "not_a_sql_connection"),
        ("keyhole_sql_execute", {"connection": "billing", "sql": "SELECT 1"}, "not_a_sql_connection"),
        ("keyhole_sql_query", {"connection": rival_connection, "sql": "SELECT 1"}, "connection_not_found"),
        ("keyhole_sql_query", {"connection": "warehouse", "sql": ""}, "invalid_arguments"),
        ("keyhole_sql_query", {"connection": "warehouse", "sql": "SELECT '\x00'"}, "invalid_query"),
        ("keyhole_sql_results", {"query_id": "nope"}, "query_not_found"),
        ("keyhole_sql_results", {"query_id": "0" * 64}, "query_not_found"),
        ("keyhole_sql_results", {"query_id": "../" + query_id}, "query_not_found"),
        ("keyhole_sql_results", {"query_id": query_id, "page_token": "garbage!"}, "invalid_page_token"),
        ("keyhole_sql_results", {"query_id": query_id, "page_token": "W10"}, "invalid_page_token"),  # []
        (
            "keyhole_sql_results",
            {"query_id": query_id, "page_token": "WzEsMl0"},
            "invalid_page_token",
        ),  # [1,2]
        ("keyhole_sql_results", {"query_id": query_id, "page_token": "WyJ4IiwwXQ"}, "invalid_page_token"),
        ("keyhole_sql_results", {"query_id": query_id, "page_token": "W251bGwsLTFd"}, "invalid_page_token"),
        ("keyhole_sql_results", {"query_id": query_id, "page_token": ""}, "invalid_arguments"),
        ("keyhole_http_request", {**_POST, "body": {"a": 1}, "body_text": "x"}, "invalid_arguments"),
        ("keyhole_http_request", {**_POST, "content_type": "text/plain"}, "invalid_arguments"),
        (
            "keyhole_http_request",
            {**_POST, "body": {"a": 1}, "content_type": "text/plain"},
            "invalid_arguments",
        ),
        ("keyhole_http_request", {**_POST, "body_text": "x", "content_type": ""}, "invalid_arguments"),
    ]
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        for tool, arguments, key in cases:
            result = await client.call_tool(tool, arguments)
            assert error_key(result) == key, (tool, arguments, text_of(result))
    # Another organization's key cannot read this organization's query.
    async with over_http(mserver.url + "/mcp", rival.keys.bearer) as client:
        result = await client.call_tool("keyhole_sql_results", {"query_id": query_id})
        refused(result, "query_not_found")
    assert_quiet_log(mserver, start)


async def test_a_content_type_with_cr_lf_or_nul_is_refused(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        for content_type in ("text/plain\r\nX-Injected: 1", "text/plain\nX-Injected: 1", "text/plain\x00"):
            result = await client.call_tool(
                "keyhole_http_request", {**_POST, "body_text": "x", "content_type": content_type}
            )
            error_key(result)


async def test_a_content_type_with_another_control_character_is_refused(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        result = await client.call_tool(
            "keyhole_http_request", {**_POST, "body_text": "x", "content_type": "text/plain\x01\x7f"}
        )
    assert error_key(result) in ("invalid_arguments", "invalid_proxy_request"), text_of(result)


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30])
async def test_a_body_with_a_huge_integer_is_sent_or_refused(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, number: int
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        result = await client.call_tool("keyhole_http_request", {**_POST, "body": {"id": number}})
    if result.is_error:
        assert error_key(result) == "invalid_arguments", text_of(result)
    else:  # sent with its exact digits (httpbin echoes the body as data)
        assert str(number) in structured(result)["body"]["data"]


# -- nothing written -----------------------------------------------------------------------------


async def test_bad_arguments_to_the_sql_tools_write_nothing(
    mserver: KeyholeServer, acme: Org, ledger: tuple[str, Path]
) -> None:
    # No REST endpoint lists an organization's queries, so the check is the database itself: a
    # write that any of these calls had submitted would change the rows.
    name, path = ledger
    write = "INSERT INTO items (id, name) VALUES (100000, 'written')"
    delete = "DELETE FROM items"
    good = {"connection": name, "sql": write}
    bad: list[dict[str, Any]] = [
        {**good, "unexpected": 1},
        {**good, "page_size": 0},
        {**good, "page_size": True},
        {**good, "page_size": "10"},
        {**good, "wait_ms": -1},
        {**good, "wait_ms": 60_001},
        {**good, "wait_ms": 1.5},
        {**good, "connection": None},
        {**good, "connection": [name]},
        {**good, "connection": name + "x"},
        {**good, "sql": [write]},
        {**good, "sql": {"text": write}},
        {**good, "sql": write + " --" + "x" * 1_000_000},
        {"connection": name, "sql": delete, "Sql": delete},
        {"sql": delete},
        {"connection": name, "sql": delete, "page_size": None},
        {"connection": name, "sql": delete, "page_token": "x"},
        {"connection": name, "sql": delete, "query_id": "x"},
    ]
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        for tool in ("keyhole_sql_execute", "keyhole_sql_query"):
            for arguments in bad:
                assert error_key(await client.call_tool(tool, arguments)) in (
                    "invalid_arguments",
                    "connection_not_found",
                ), arguments
        assert count(path, "items") == ROWS
        # The connection does write when asked properly: so the unchanged rows above mean that no
        # bad call ran.
        done = structured(
            await client.call_tool(
                "keyhole_sql_execute", {"connection": name, "sql": "INSERT INTO control VALUES (1)"}
            )
        )
        assert done["status"] == "done", done
    assert count(path, "control") == 1
    assert count(path, "items") == ROWS


# -- Hypothesis: arbitrary JSON -----------------------------------------------------------------


class ClientInThread:
    """The official client on an event loop of its own, so that a synchronous Hypothesis test
    can make many calls with one client."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self._url, self._headers = url, headers
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._client: Client | None = None
        self._stop: asyncio.Event | None = None
        self._held: concurrent.futures.Future[None] | None = None

    async def _hold(self, ready: concurrent.futures.Future[None]) -> None:
        self._stop = asyncio.Event()
        async with over_http(self._url, self._headers) as client:
            self._client = client
            ready.set_result(None)
            await self._stop.wait()

    def __enter__(self) -> ClientInThread:
        self._thread.start()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._held = asyncio.run_coroutine_threadsafe(self._hold(ready), self._loop)
        concurrent.futures.wait(
            [ready, self._held], timeout=60, return_when=concurrent.futures.FIRST_COMPLETED
        )
        if self._held.done():
            self._held.result()  # raises why the client could not connect
        ready.result(timeout=0)
        return self

    def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        assert self._client is not None
        return asyncio.run_coroutine_threadsafe(self._client.call_tool(tool, arguments), self._loop).result(
            120
        )

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._held is not None:
            self._held.result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=60)
        self._loop.close()


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, 1, -1, 1023, 1024, 65_536, 65_537, 1_000_000, 2**53])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
# Values of the right JSON type with arbitrary content, so that calls get past validation too.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "connection": st.sampled_from(["billing", "warehouse", "Billing", "billing ", ""]) | st.text(max_size=40),
    "path": st.text(max_size=40).map(lambda rest: "/anything/" + rest) | st.text(max_size=20),
    "method": st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "get", "TRACE"]),
    "query": st.dictionaries(st.text(max_size=10), scalars | st.lists(scalars, max_size=3), max_size=4),
    "headers": st.dictionaries(
        st.text(max_size=20) | st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True),
        st.text(max_size=40),
        max_size=4,
    ),
    "body": st.dictionaries(st.text(max_size=10), json_values, max_size=4)
    | st.lists(json_values, max_size=4),
    "body_text": st.text(max_size=60),
    "content_type": st.text(max_size=30) | st.sampled_from(["text/plain", "application/json", "text/csv"]),
    "sql": st.text(max_size=60)
    | st.sampled_from(["SELECT 1", "SELECT * FROM items", "PRAGMA table_info(items)"]),
    "kind": st.sampled_from(["http", "sql", "HTTP", ""]) | st.text(max_size=8),
    "search": st.text(max_size=20),
    "query_id": st.text(max_size=70),
    "page_token": st.text(max_size=60),
    "limit": st.integers(min_value=-5, max_value=250),
    "offset": st.integers(min_value=-5, max_value=1_000_005),
    "max_inline_bytes": st.integers(min_value=1000, max_value=70_000),
    "page_size": st.integers(min_value=-2, max_value=1005),
    "wait_ms": st.integers(min_value=-2, max_value=1000),
}


def arguments_for(tool: str, valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    names = list(field_names(tool))
    keys = st.sampled_from(names) | st.text(max_size=12)
    arbitrary = st.dictionaries(keys, json_values, max_size=6)

    @st.composite
    def mutated(draw: st.DrawFn) -> dict[str, Any]:
        arguments = dict(valid)
        for name in draw(st.sets(st.sampled_from(names), max_size=2)):
            arguments.pop(name, None)
        for name in draw(st.sets(st.sampled_from(names), min_size=1, max_size=3)):
            # Mostly the right JSON type, so that most calls get past validation.
            arguments[name] = draw(PLAUSIBLE[name] if draw(st.integers(0, 3)) else json_values)
        if draw(st.integers(0, 9)) == 0:
            arguments[draw(st.text(max_size=12))] = draw(json_values)
        return arguments

    return arbitrary | mutated()


@pytest.mark.parametrize("tool", TOOLS)
def test_arbitrary_json_arguments_are_a_result_or_a_clear_refusal(
    mserver: KeyholeServer,
    acme: Org,
    httpbin_connection: str,
    sqlite_connection: str,
    query_id: str,
    tool: str,
) -> None:
    start = len(mserver.logs())
    failures_before = internal_errors(mserver)
    valid = valid_arguments(query_id)[tool]
    outcomes: list[bool] = []  # whether each generated call got past validation
    with ClientInThread(mserver.url + "/mcp", acme.keys.bearer) as client:

        @FUZZ
        @given(arguments=arguments_for(tool, valid))
        def check(arguments: dict[str, Any]) -> None:
            result = client.call(tool, arguments)  # a protocol error (MCPError) raises here
            if result.is_error:
                outcomes.append(error_key(result) != "invalid_arguments")
            else:
                assert isinstance(result.structured_content, dict), text_of(result)
                outcomes.append(True)
            assert SECRET not in text_of(result)

        check()
    # The generated calls must reach the tools too, not only their argument schema.
    assert any(outcomes), f"every generated call to {tool} was refused by its schema"
    assert_quiet_log(mserver, start)
    assert internal_errors(mserver) == failures_before


# -- Hypothesis: the credential header under any spelling ----------------------------------------

LOOKALIKES = {
    "a": "\u0430\u0251\uff41",  # Cyrillic a, Latin alpha, fullwidth a
    "A": "\u0410\u0391\uff21",
    "o": "\u043e\u03bf\u00f6\uff4f",
    "i": "\u0456\u0131\u00ed\uff49",
    "I": "\u0406\u0399\u0130",
    "z": "\u1d22\u017e",
    "t": "\u0442\u0163",
    "h": "\u04bb",
    "r": "\u0433",
    "n": "\u043f",
    "p": "\u0440",
    "e": "\u0435\u00e9",
    "k": "\u043a\u212a",  # the Kelvin sign folds to k
    "K": "\u041a\u212a",
    "y": "\u0443",
    "x": "\u0445",
    "X": "\u0425",
}
SPACES = ["", " ", "\t", "\u00a0", "\u200b", "\ufeff", "\u3000", "\x00"]


@st.composite
def spellings(draw: st.DrawFn, name: str) -> str:
    """``name`` as an attacker may spell it hoping an upstream reads it as ``name``: its case
    changed, separators swapped or added, letters replaced by lookalikes, whitespace around it;
    each example picks some of these."""
    ways = draw(st.sets(st.sampled_from(["case", "separators", "lookalikes", "whitespace"]), min_size=1))
    spelled = name
    if "case" in ways:
        flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
        spelled = "".join(c.swapcase() if flip else c for c, flip in zip(spelled, flips, strict=True))
    if "lookalikes" in ways:
        at = draw(st.sampled_from([i for i, c in enumerate(spelled) if c in LOOKALIKES]))
        spelled = spelled[:at] + draw(st.sampled_from(LOOKALIKES[spelled[at]])) + spelled[at + 1 :]
    if "separators" in ways:
        spelled = spelled.replace("-", draw(st.sampled_from(["-", "_", ".", " ", "", "--", "__"])))
        if draw(st.booleans()):  # a separator where there was none
            at = draw(st.integers(0, len(spelled)))
            spelled = spelled[:at] + draw(st.sampled_from(["-", "_", "."])) + spelled[at:]
    if "whitespace" in ways:
        spelled = draw(st.sampled_from(SPACES)) + spelled + draw(st.sampled_from(SPACES))
    return spelled


CREDENTIAL_HEADERS = {
    # connection fixture → (the credential's header, how httpbin echoes the injected one)
    "billing": ("Authorization", "Bearer [REDACTED]"),
    "keyed": ("X-Api-Key", "[REDACTED]"),
}


@pytest.mark.parametrize("target", sorted(CREDENTIAL_HEADERS))
def test_the_credential_header_cannot_be_sent_under_any_spelling(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, keyed_connection: str, target: str
) -> None:
    connection = httpbin_connection if target == "billing" else keyed_connection
    header, echoed = CREDENTIAL_HEADERS[target]
    start = len(mserver.logs())
    with ClientInThread(mserver.url + "/mcp", acme.keys.bearer) as client:

        @settings(FUZZ, max_examples=100)
        @given(
            spelled=spellings(header)
            | st.sampled_from([header.lower(), header.upper(), header.replace("-", "_")])
        )
        def check(spelled: str) -> None:
            result = client.call(
                "keyhole_http_get",
                {
                    "connection": connection,
                    "path": "/anything",
                    "headers": {spelled: "Bearer mine-not-yours"},
                },
            )
            shown = text_of(result)
            assert SECRET not in shown and KEY_SECRET not in shown
            if result.is_error:
                key = error_key(result)
                assert key in (
                    "locked_header",
                    "blocked_header",
                    "invalid_proxy_request",
                    "invalid_arguments",
                )
                return
            # Sent as another header: the upstream still got the injected credential, scrubbed in
            # its echo, and never the caller's value in its place.
            assert spelled.lower().replace("_", "-") != header.lower(), spelled
            echo = structured(result)["body"]["headers"]
            assert echo[header] == echoed, echo
            assert "mine-not-yours" not in echo[header]

        check()
    assert_quiet_log(mserver, start)
