"""The MCP server: ``tools/list`` and ``tools/call`` on the official SDK's low-level ``Server``.

A caller is known before the SDK sees its request (``api.mcp.http`` authenticates it and puts it
in the request's scope), so each handler reads who is calling from there. A tool's failure comes
back as a tool error (``isError``) that says what happened and what to do, in the words and keys of
the REST API; bad arguments too. Only an unknown tool name is a protocol error.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INVALID_PARAMS
from pydantic import ValidationError

from keyhole import __version__
from keyhole.api.mcp.metrics import count_tool_call
from keyhole.api.mcp.reach import Caller
from keyhole.api.mcp.tools import BY_NAME, TOOLS, Outcome, Tool
from keyhole.errors import KeyholeError
from keyhole.services import Services

logger = logging.getLogger("keyhole.mcp")

SCOPE_KEY = "keyhole.mcp"
INSTRUCTIONS = (
    "Keyhole holds third-party credentials and makes calls with them for you. Start with "
    "keyhole_list_connections, read a connection's contract with keyhole_describe_connection, then "
    "call it with keyhole_http_get / keyhole_http_request (HTTP APIs) or keyhole_sql_query "
    "(databases). You never see or send the credentials."
)
_LIST_TTL_MS = 60_000


@dataclass(frozen=True, slots=True)
class McpCall:
    """What an authenticated request carries to the handlers."""

    services: Services
    caller: Caller


def _call_of(ctx: ServerRequestContext[Any, Any]) -> McpCall:
    request = ctx.request
    call = None if request is None else request.scope.get(SCOPE_KEY)
    if not isinstance(call, McpCall):  # every request passes api.mcp.http first
        raise MCPError(types.INTERNAL_ERROR, "the request reached the MCP server unauthenticated")
    return call


def _offered(caller: Caller) -> list[Tool[Any]]:
    return [tool for tool in TOOLS if caller.session is None or tool.in_sessions]


def _definitions() -> dict[str, types.Tool]:
    return {tool.name: tool.definition() for tool in TOOLS}


DEFINITIONS = _definitions()


def _text(outcome: Outcome) -> str:
    return f"{outcome.headline}\n{orjson.dumps(outcome.structured).decode()}"


def _success(outcome: Outcome) -> types.CallToolResult:
    content: list[types.ContentBlock] = [types.TextContent(text=_text(outcome)), *outcome.links]
    return types.CallToolResult(content=content, structured_content=dict(outcome.structured))


def tool_error(key: str, message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=f"{key}: {message}")], is_error=True)


def _refusal(error: KeyholeError) -> types.CallToolResult:
    message = error.message
    if error.retry_after is not None:
        message += f" (retry after {error.retry_after} s)"
    return tool_error(error.key, message)


def _noted(caller: Caller, tool: Tool[Any], outcome: str) -> None:
    """Count the call; a refused one is also logged, so an operator can find why an agent failed."""
    count_tool_call(tool.name, outcome)
    if outcome != "ok":
        logger.info(
            "MCP tool call refused",
            extra={
                "tool": tool.name,
                "error_key": outcome,
                "organization_id": caller.principal.organization_id,
            },
        )


def _invalid_arguments(tool: Tool[Any], error: ValidationError) -> types.CallToolResult:
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:10]:
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        problems.append(f"{where[:128]}: {item['msg']}")
    return tool_error("invalid_arguments", f"invalid arguments for {tool.name}: {'; '.join(problems)}")


async def _list_tools(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    call = _call_of(ctx)
    return types.ListToolsResult(
        tools=[DEFINITIONS[tool.name] for tool in _offered(call.caller)],
        ttl_ms=_LIST_TTL_MS,
        cache_scope="private",
    )


def _encodable(arguments: dict[str, Any] | None) -> bool:
    """Whether every string in ``arguments`` is real Unicode: JSON may escape a lone surrogate,
    which no upstream request, query or log line can carry."""
    try:
        json.dumps(arguments, ensure_ascii=False).encode()
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def offered_tool(call: McpCall, name: str) -> Tool[Any] | None:
    """The tool ``name`` names, if this caller is offered it (a session is offered fewer)."""
    tool = BY_NAME.get(name)
    return tool if tool is not None and tool in _offered(call.caller) else None


async def run_tool(call: McpCall, tool: Tool[Any], arguments: dict[str, Any] | None) -> types.CallToolResult:
    """One call of ``tool``: its result, or a tool error that says why (never an exception)."""
    if not _encodable(arguments):
        _noted(call.caller, tool, "invalid_arguments")
        return tool_error(
            "invalid_arguments",
            f"invalid arguments for {tool.name}: text that is not valid Unicode (a lone surrogate escape)",
        )
    try:
        parsed = tool.arguments.model_validate(arguments or {})
    except ValidationError as error:
        _noted(call.caller, tool, "invalid_arguments")
        return _invalid_arguments(tool, error)
    try:
        result = _success(await tool.run(call.services, call.caller, parsed))
    except KeyholeError as error:
        _noted(call.caller, tool, error.key)
        return _refusal(error)
    except Exception:
        logger.exception("tool %s failed unexpectedly", tool.name)
        _noted(call.caller, tool, "internal_error")
        return tool_error("internal_error", "the tool failed unexpectedly; the server log has the details")
    _noted(call.caller, tool, "ok")
    return result


async def _call_tool(
    ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    call = _call_of(ctx)
    tool = offered_tool(call, params.name)
    if tool is None:
        raise MCPError(INVALID_PARAMS, f"unknown tool {params.name[:64]!r}; tools/list names the tools")
    return await run_tool(call, tool, params.arguments)


def _no_header_parameters(name: str) -> None:
    """No tool maps an argument to an ``Mcp-Param-*`` header, so the SDK has nothing to check
    against them. Without this answer it would list the tools on every call to find out."""
    return None


def build_server() -> Server[Any]:
    return Server(
        "keyhole",
        version=__version__,
        title="Keyhole",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=_no_header_parameters,
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
    )
