"""The MCP server's routes and their place in the OpenAPI documents."""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Route
from typing_extensions import TypedDict

from keyhole.api.mcp.http import McpEndpoint, McpTransport
from keyhole.api.openapi import ACCESS_ATTRIBUTE, Answer, Section, describe
from keyhole.tenancy.access import Access


class JsonRpcRequest(BaseModel):
    """One JSON-RPC 2.0 message of the Model Context Protocol."""

    model_config = ConfigDict(extra="allow")

    jsonrpc: Literal["2.0"]
    id: int | str | None = Field(default=None, description="Absent for a notification")
    method: str = Field(description="tools/list, tools/call, initialize, ping …")
    params: dict[str, Any] | None = None


class JsonRpcErrorObject(TypedDict):
    code: int
    message: str
    data: NotRequired[Any]


class JsonRpcError(TypedDict):
    jsonrpc: str
    id: int | str | None
    error: JsonRpcErrorObject


class JsonRpcAnswer(TypedDict):
    jsonrpc: str
    id: int | str | None
    result: NotRequired[dict[str, Any]]
    error: NotRequired[JsonRpcErrorObject]


_DESCRIPTION = (
    "The Model Context Protocol over streamable HTTP (stateless, JSON answers): POST one JSON-RPC "
    "message with `Accept: application/json, text/event-stream`. Tools: keyhole_list_connections, "
    "keyhole_describe_connection, keyhole_list_connection_types, keyhole_http_get, "
    "keyhole_http_request, keyhole_sql_query, keyhole_sql_execute, keyhole_sql_results. "
    "Authenticated with the same keys as the REST API."
)


def _mount(endpoint: McpEndpoint, summary: str, description: str) -> McpEndpoint:
    setattr(endpoint, ACCESS_ATTRIBUTE, Access.RESOURCES)
    return describe(
        summary=summary,
        description=description,
        tag="MCP",
        body=JsonRpcRequest,
        body_examples={
            "list_tools": {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            "call_tool": {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {
                    "name": "keyhole_http_get",
                    "arguments": {"connection": "billing-api", "path": "/v1/invoices"},
                },
            },
        },
        answers={
            200: Answer(
                JsonRpcAnswer, description="The JSON-RPC answer; a tool's failure is a result with isError"
            ),
            202: Answer(description="A notification or a response, accepted"),
        },
        errors=(404, 406, 413, 415),
        extension=True,
    )(endpoint)


def routes(transport: McpTransport) -> list[Route]:
    return [
        Route(
            "/mcp",
            _mount(
                transport.endpoint(in_session=False, name="mcp"),
                "MCP server",
                _DESCRIPTION,
            ),
            methods=["POST"],
        ),
        Route(
            "/tool_router/{session_id}/mcp",
            _mount(
                transport.endpoint(in_session=True, name="session_mcp"),
                "MCP server of a tool router session",
                _DESCRIPTION + " On a session's URL (its `mcp.url`) the tools reach only what the "
                "session's proxy_execute reaches, and a connection is named by its toolkit slug; the "
                "key must be of the session's organization.",
            ),
            methods=["POST"],
        ),
    ]


def section(mounted: list[Route]) -> Section:
    return Section(
        routes=mounted,
        error_shape=JsonRpcError,
        common_errors=(400, 401, 403),
        tag_descriptions={"MCP": "The Model Context Protocol server for agents."},
    )
