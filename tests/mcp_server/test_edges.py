"""Edges found by reading the MCP server against its rules: a row too long for a tool result,
upstream JSON a result cannot carry, arguments that are not real Unicode, NaN in a body, a
rebinding Origin, and envelopes the shortcut must leave to the SDK."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from conftest import KeyholeServer, free_port

from .conftest import Org
from .support import SECRET, over_http, refused, stateless_call, structured, text_of

# JSON that Python reads but a result's encoder cannot write: a lone surrogate escape, 300 levels.
DOCUMENTS = {"/surrogate": '{"t": "abc\\ud83d"}', "/deep": "[" * 300 + "]" * 300}


async def test_a_row_too_long_for_a_result_is_refused_with_a_next_step(
    mserver: KeyholeServer, acme: Org, sqlite_connection: str
) -> None:
    async with over_http(mserver.url + "/mcp", acme.keys.bearer) as client:
        result = await client.call_tool(
            "keyhole_sql_query", {"connection": "warehouse", "sql": "SELECT hex(randomblob(40000)) AS blob"}
        )
        message = refused(result, "row_too_large")
        assert "substr" in message and "/api/queries/" in message
        # Rows that fit come in pages that stay under the bound, whatever page_size asks for.
        wide = structured(
            await client.call_tool(
                "keyhole_sql_query",
                {
                    "connection": "warehouse",
                    "sql": "SELECT id, hex(randomblob(2000)) AS pad FROM items ORDER BY id",
                    "page_size": 1000,
                },
            )
        )
    assert 0 < len(wide["rows"]) < 20 and wide["next_page_token"] is not None
    assert len(json.dumps(wide["rows"])) <= 32_768


@pytest.fixture(scope="module")
def odd_json(mserver: KeyholeServer) -> Iterator[Org]:
    """An organization whose connection ``odd`` answers JSON that Python reads but a result's
    encoder cannot write: ``/surrogate`` (a lone surrogate escape), ``/deep`` (300 levels)."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=DOCUMENTS[request.path], content_type="application/json")

    application = web.Application()
    application.router.add_get("/{name}", answer)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(application)
    loop.run_until_complete(runner.setup())
    port = free_port()
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    keys = mserver.bootstrap("odd-json", "agent@odd.test")
    with httpx.Client(base_url=mserver.url, headers=keys.bearer, timeout=30) as rest:
        org = Org(keys, rest)
        org.create(
            {
                "name": "odd",
                "type": "api",
                "configuration": {
                    "url": f"http://127.0.0.1:{port}",
                    "auth": {"type": "bearer", "token": SECRET},
                },
                "validate": False,
            }
        )
        yield org
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.close()


async def test_upstream_json_a_result_cannot_carry_comes_back_as_text(
    mserver: KeyholeServer, odd_json: Org
) -> None:
    async with over_http(mserver.url + "/mcp", odd_json.keys.bearer) as client:
        for path in ("/surrogate", "/deep"):
            result = await client.call_tool("keyhole_http_get", {"connection": "odd", "path": path})
            answer = structured(result)
            assert answer["status"] == 200 and answer["body_kind"] == "text", text_of(result)
            assert answer["body"] == DOCUMENTS[path]  # the upstream's text, every character


def _authorized(
    org: Org, arguments: dict[str, Any], *, tool: str = "keyhole_http_get", **envelope: Any
) -> tuple[dict[str, str], bytes]:
    headers, body = stateless_call(tool, arguments, **envelope)
    return {**org.keys.bearer, **headers}, body


def _post(mserver: KeyholeServer, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    response = httpx.post(mserver.url + "/mcp", content=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _refused_raw(answer: dict[str, Any], key: str) -> str:
    result = answer["result"]
    assert result["isError"] is True, answer
    text: str = result["content"][0]["text"]
    assert text.startswith(f"{key}: "), text
    return text


def test_arguments_that_are_not_unicode_are_invalid(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str, sqlite_connection: str
) -> None:
    # Clients that write JSON with ASCII escapes can send a lone surrogate; the official client
    # cannot even encode one, so these go out raw.
    calls: list[tuple[str, dict[str, Any]]] = [
        ("keyhole_http_get", {"connection": "billing", "path": "/anything/\ud800"}),
        ("keyhole_http_get", {"connection": "billing", "path": "/get", "query": {"q": "\udfff"}}),
        ("keyhole_http_get", {"connection": "billing", "path": "/get", "headers": {"X-A": "\ud800"}}),
        (
            "keyhole_http_request",
            {"connection": "billing", "method": "POST", "path": "/post", "body_text": "\ud800"},
        ),
        ("keyhole_sql_query", {"connection": "warehouse", "sql": "SELECT '\ud800'"}),
    ]
    for tool, arguments in calls:
        headers, body = _authorized(acme, arguments, tool=tool)
        assert "Unicode" in _refused_raw(_post(mserver, headers, body), "invalid_arguments")


def test_a_body_with_nan_is_refused_not_sent_as_null(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str
) -> None:
    for value in ("NaN", "Infinity", "-Infinity"):
        headers, body = _authorized(
            acme,
            {"connection": "billing", "method": "POST", "path": "/post", "body": {"x": 0}},
            tool="keyhole_http_request",
        )
        spelled = body.replace(b'{"x": 0}', b'{"x": ' + value.encode() + b"}")
        assert "NaN" in _refused_raw(_post(mserver, headers, spelled), "invalid_arguments")


def test_an_id_beyond_64_bits_is_answered_and_echoed(
    mserver: KeyholeServer, acme: Org, httpbin_connection: str
) -> None:
    huge = 2**70
    headers, body = _authorized(acme, {"connection": "billing", "path": "/get"}, id=huge)
    response = httpx.post(mserver.url + "/mcp", content=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    answer = json.loads(response.text)
    assert answer["id"] == huge and answer["result"]["structuredContent"]["status"] == 200


def test_a_malformed_envelope_is_refused_before_any_tool_runs(
    mserver: KeyholeServer, acme: Org, httpbin_url: str
) -> None:
    name = f"envelope-{uuid.uuid4().hex[:6]}"
    connection = acme.create(
        {
            "name": name,
            "type": "api",
            "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": SECRET}},
            "validate": False,
        }
    )
    for meta in (
        {"io.modelcontextprotocol/clientCapabilities": 5},
        {"io.modelcontextprotocol/clientInfo": {"version": "1"}},
        {"progressToken": [1]},
    ):
        headers, body = _authorized(acme, {"connection": name, "path": "/get"}, meta=meta)
        answer = httpx.post(mserver.url + "/mcp", content=body, headers=headers, timeout=60).json()
        assert "error" in answer and answer["error"]["code"] == -32602, answer
    # One good call after them: once it is in the audit log, anything sent before it would be too.
    headers, body = _authorized(acme, {"connection": name, "path": "/get"})
    good = _post(mserver, headers, body)["result"]["structuredContent"]["call_id"]
    deadline = time.monotonic() + 15
    while True:
        calls = acme.rest.get(f"/api/connections/{connection}/proxy/calls").json()["data"]
        if calls or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [call["proxyCallId"] for call in calls] == [good], "a refused call reached the upstream"


def test_a_rebinding_origin_is_refused(mserver: KeyholeServer, acme: Org) -> None:
    """A page at evil.example whose name now resolves to this host: Host and Origin agree, and
    neither is loopback nor the public URL."""
    port = mserver.url.rsplit(":", 1)[1]
    name = f"evil.example:{port}"
    response = httpx.post(
        mserver.url + "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
        headers={
            **acme.keys.bearer,
            "Host": name,
            "Origin": f"http://{name}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-11-25",
        },
        timeout=60,
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["data"]["key"] == "origin_not_allowed"
