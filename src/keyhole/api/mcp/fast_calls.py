"""``tools/call`` of the stateless protocol, answered without the SDK's per-request pipeline.

A tool call is nearly all of an agent's traffic, and the SDK's generic path around it (its
request and result models validated and dumped twice, a tracing span, a connection object and a
runner per request) costs about twice the tool itself. A call that is plainly well formed goes
straight to the tool instead: the same envelope and request rules, checked with the SDK's own
classifier and request models, the same ``run_tool`` as the SDK's handler, the result dumped once
in the SDK's wire form.
Anything else, and anything unusual about a call (an older protocol revision, a duplicated
routing header, an id or field the shortcut does not expect, an unknown tool), goes to the SDK
untouched, which answers it as it would have. ``tests/mcp_server/test_fast_calls.py`` holds
both paths to the same answers.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import check_accept_headers
from mcp.shared.inbound import InboundModernRoute, classify_inbound_request, find_duplicated_routing_header
from mcp_types import SERVER_INFO_META_KEY
from mcp_types.methods import validate_client_request
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

from keyhole.api.mcp.server import McpCall, offered_tool, run_tool

_ENVELOPE = frozenset({"jsonrpc", "id", "method", "params"})
_PARAMS = frozenset({"name", "arguments", "_meta"})
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def _plain_call(request: Request, body: bytes) -> tuple[int | str, str, dict[str, Any] | None] | None:
    """``(id, tool name, arguments)`` of a well-formed modern ``tools/call``, else None."""
    if request.headers.get("mcp-protocol-version") not in MODERN_PROTOCOL_VERSIONS:
        return None
    if not check_accept_headers(request)[0]:
        return None
    try:  # as the SDK reads it: orjson would turn an integer beyond 64 bits into a float
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or message.keys() - _ENVELOPE:
        return None
    if message.get("jsonrpc") != "2.0" or message.get("method") != "tools/call":
        return None
    request_id, params = message.get("id"), message.get("params")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        return None
    if isinstance(request_id, int) and not _INT64_MIN <= request_id <= _UINT64_MAX:
        return None  # the SDK's encoder writes any integer; orjson's stops at 64 bits
    if not isinstance(params, dict) or params.keys() - _PARAMS:
        return None
    name, arguments = params.get("name"), params.get("arguments")
    if not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict)):
        return None
    if find_duplicated_routing_header(request.headers.items()) is not None:
        return None
    route = classify_inbound_request(message, headers=request.headers)
    if not isinstance(route, InboundModernRoute):
        return None
    try:  # the request's own model, as the SDK checks it before any handler runs
        validate_client_request("tools/call", route.protocol_version, params)
    except (ValidationError, ValueError):
        return None
    return request_id, name, arguments


async def answer(server: Server[Any], call: McpCall, request: Request, body: bytes, send: Send) -> bool:
    """Answer ``body`` if it is a plain tool call; False leaves it to the SDK."""
    plain = _plain_call(request, body)
    if plain is None:
        return False
    request_id, name, arguments = plain
    tool = offered_tool(call, name)
    if tool is None:
        return False
    result = (await run_tool(call, tool, arguments)).model_dump(by_alias=True, mode="json", exclude_none=True)
    result["_meta"] = {SERVER_INFO_META_KEY: server.server_info_stamp}
    response = {"jsonrpc": "2.0", "id": request_id, "result": result}
    await Response(orjson.dumps(response), media_type="application/json")(
        request.scope, request.receive, send
    )
    return True
