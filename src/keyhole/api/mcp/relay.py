"""``keyhole mcp``: the MCP server on stdio, for desktop agents, relaying to a Keyhole server.

The tools run where the credentials are: each ``tools/list`` and ``tools/call`` read on stdin is
sent to the server's ``/mcp`` with the API key from the environment, and its answer written back
on stdout. So the agent's machine holds a key and never a credential or the master keys, and every
rule (rate limits shared across replicas, egress policy, audit) is the server's. Logs go to
stderr; stdout carries protocol messages only.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from keyhole import __version__
from keyhole.api.mcp.server import INSTRUCTIONS, tool_error

# Connecting and sending are quick or failed; an answer may take a connection's longest timeout
# (300 s) twice (an OAuth2 upstream's refused token is refreshed and the call sent again), and
# the server's own work around it.
READ_SECONDS = 660.0
TIMEOUT = httpx2.Timeout(10.0, read=READ_SECONDS)


class RelayFailed(Exception):
    """The Keyhole server cannot be reached or refused the key; the message says which."""


def _unreachable(url: str, error: Exception) -> types.CallToolResult:
    return tool_error(
        "keyhole_unreachable",
        f"the Keyhole server at {url} did not answer ({type(error).__name__}); check that it runs and "
        "KEYHOLE_URL names it",
    )


async def relay(url: str, api_key: str) -> None:
    endpoint = url.rstrip("/") + "/mcp"
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            create_mcp_http_client(headers={"Authorization": f"Bearer {api_key}"}, timeout=TIMEOUT)
        )
        try:
            remote = await stack.enter_async_context(
                Client(streamable_http_client(endpoint, http_client=http))
            )
        except Exception as error:
            raise RelayFailed(_why(endpoint, error)) from None

        async def list_tools(
            ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            return await remote.list_tools(cursor=params.cursor if params else None, cache_mode="refresh")

        async def call_tool(
            ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            try:
                return await remote.session.call_tool(params.name, params.arguments)
            except MCPError:
                raise  # an unknown tool, a malformed request: the server's protocol error, as it said
            except httpx2.TimeoutException:
                return tool_error(
                    "keyhole_timeout",
                    f"the Keyhole server at {url} did not answer within {READ_SECONDS:.0f} s; the call "
                    "may still have run there (its audit log tells)",
                )
            except httpx2.HTTPError as error:
                return _unreachable(url, error)

        local = Server(
            "keyhole",
            version=__version__,
            title="Keyhole",
            instructions=INSTRUCTIONS,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
        )
        async with stdio_server() as (read, write):
            await local.run(read, write, local.create_initialization_options())


def _cause(error: BaseException) -> BaseException:
    """The first failure inside the task groups the client's transport wraps it in."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _why(endpoint: str, error: Exception) -> str:
    cause = _cause(error)
    if isinstance(cause, MCPError):  # the server answered: its refusal says what to fix
        return f"{endpoint} refused the connection: {cause.error.message}"
    return (
        f"cannot reach the Keyhole server at {endpoint} ({type(cause).__name__}); check that it runs "
        "and that KEYHOLE_URL names it"
    )
