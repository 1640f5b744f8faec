"""Helpers of the MCP server suite: the official client against a live server, and the REST
calls that set up what the tools reach."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

SECRET = "sek_mcp_Q8zV3nT6wY1pL4rD"  # the upstream credential of the suite's HTTP connections

TOOLS = (
    "keyhole_list_connections",
    "keyhole_describe_connection",
    "keyhole_list_connection_types",
    "keyhole_http_get",
    "keyhole_http_request",
    "keyhole_sql_query",
    "keyhole_sql_execute",
    "keyhole_sql_results",
)
SESSION_TOOLS = TOOLS[:5]
STATELESS = "2026-07-28"  # the protocol revision the official client speaks by default


def stateless_call(
    tool: str, arguments: Any, *, meta: dict[str, Any] | None = None, **envelope: Any
) -> tuple[dict[str, str], bytes]:
    """A ``tools/call`` as the official client sends it in the stateless protocol: ``(headers,
    body)``, no credential. ``meta`` adds to (or replaces) the envelope in ``_meta``; other
    keywords set (or replace) the message's own members."""
    message: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": tool,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": STATELESS,
                "io.modelcontextprotocol/clientInfo": {"name": "keyhole-tests", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
                **(meta or {}),
            },
        },
        **envelope,
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": STATELESS,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    return headers, json.dumps(message).encode()  # any integer, as a client may send one


def download(url: str) -> httpx.Response:
    """A download URL fetched as anyone would: no key, no credential."""
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response


@asynccontextmanager
async def over_http(url: str, headers: dict[str, str], *, mode: str = "auto") -> AsyncIterator[Client]:
    """The official client on streamable HTTP, sending ``headers`` on every request."""
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    async with Client(transport, mode=mode) as client:
        yield client


@asynccontextmanager
async def over_stdio(server_url: str, api_key: str) -> AsyncIterator[Client]:
    """The official client running ``keyhole mcp`` as a desktop agent would."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "keyhole.cli", "mcp"],
        env={"KEYHOLE_URL": server_url, "KEYHOLE_API_KEY": api_key, "PATH": os.environ.get("PATH", "")},
    )
    async with Client(params) as client:
        yield client


def count(path: Path, table: str) -> int:
    """The rows of ``table`` in the SQLite file ``path``, read directly."""
    with sqlite3.connect(path) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def text_of(result: types.CallToolResult) -> str:
    """Everything a result shows an agent, as one string (to look for secrets in)."""
    parts = [block.model_dump_json() for block in result.content]
    if result.structured_content is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)


def structured(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def refused(result: types.CallToolResult, key: str) -> str:
    """A tool error whose text starts with the error key ``key``; returns the text."""
    assert result.is_error, text_of(result)
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    assert first.text.startswith(f"{key}: "), first.text
    return first.text
