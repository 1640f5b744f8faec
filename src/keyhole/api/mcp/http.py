"""The MCP server over streamable HTTP: ``/mcp`` and ``/tool_router/{session_id}/mcp``.

Each request is authenticated here, before the SDK sees it, with the REST API's own keys
(Bearer, Basic ``org_id:key``, ``x-api-key``); a tool router session's URL also needs the key of
the session's organization (the session id alone is never a credential). The transport is
stateless with JSON answers: no request depends on an earlier one, so any replica serves any
request and nothing is kept between them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from keyhole.api.links import public_base_url
from keyhole.api.mcp import fast_calls
from keyhole.api.mcp.reach import Caller
from keyhole.api.mcp.server import SCOPE_KEY, McpCall, build_server
from keyhole.api.middleware import note_error, note_principal
from keyhole.api.requests import read_body
from keyhole.errors import Forbidden, KeyholeError, Unauthenticated, UnsupportedMediaType
from keyhole.services import Services

# JSON-RPC's code for a request refused before it reached a method (the SDK uses it too).
_REFUSED = -32000
MAX_REQUEST_BYTES = 4 * 1024 * 1024


def _refusal(error: KeyholeError) -> Response:
    body = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": _REFUSED, "message": f"{error.key}: {error.message}", "data": {"key": error.key}},
    }
    headers = dict(error.headers)
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="keyhole"'
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(
        orjson.dumps(body), status_code=error.status, headers=headers, media_type="application/json"
    )


def _check_origin(request: Request, services: Services) -> None:
    """A browser page may drive the MCP endpoint only from the server's own origin: the public URL
    when one is set, else a loopback origin that is the request's own (a name that resolves to
    this host by DNS rebinding is not loopback). Clients that are not browsers send no Origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    origin = origin.rstrip("/")
    public = services.settings.public_url
    if public is not None:
        allowed = origin == public.rstrip("/")
    else:
        allowed = origin == public_base_url(request, services.settings) and _loopback(request.url.hostname)
    if not allowed:
        raise Forbidden(
            f"requests from the web origin {origin[:128]!r} are refused; MCP clients send no Origin",
            key="origin_not_allowed",
        )


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


async def _read_message(request: Request) -> bytes:
    """The JSON-RPC message, read here so that a refusal is in the dialect's envelope (the
    SDK answers these in plain text) and never buffered past the cap."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            "an MCP request is one JSON-RPC message sent as Content-Type: application/json",
            key="unsupported_media_type",
        )
    return await read_body(request, MAX_REQUEST_BYTES)


def _replay(body: bytes, original: Receive) -> Receive:
    """The request's body again, for the SDK, which reads it from ``receive``."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:  # the body is read: what comes next is the client going away, if it does
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class McpTransport:
    """The SDK's streamable HTTP transport for one app; it runs inside the app's lifespan. With
    ``fast_calls``, plain tool calls skip the SDK's per-request pipeline (``api.mcp.fast_calls``)."""

    def __init__(self, *, fast_calls: bool = True) -> None:
        self._server = build_server()
        self._fast_calls = fast_calls
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        manager = StreamableHTTPSessionManager(
            app=self._server,
            json_response=True,
            stateless=True,
            # Origin is checked by _check_origin; Host may be any name the server answers under.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            max_request_body_size=MAX_REQUEST_BYTES,
        )
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    def endpoint(self, *, in_session: bool, name: str) -> McpEndpoint:
        return McpEndpoint(self, in_session=in_session, name=name)

    async def serve(self, call: McpCall, request: Request, body: bytes, send: Send) -> None:
        if self._manager is None:  # requests arrive only once the app's lifespan started it
            raise RuntimeError("the MCP transport is not running")
        if self._fast_calls and await fast_calls.answer(self._server, call, request, body, send):
            return
        request.scope[SCOPE_KEY] = call
        await self._manager.handle_request(request.scope, _replay(body, request.receive), send)


class McpEndpoint:
    """One mount of the MCP server; with ``in_session`` its tools are scoped to the session in
    the path, exactly as the session's ``proxy_execute``."""

    def __init__(self, transport: McpTransport, *, in_session: bool, name: str) -> None:
        self._transport = transport
        self._in_session = in_session
        self.__name__ = name  # the OpenAPI operation id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        services: Services = request.app.state.services
        try:
            _check_origin(request, services)
            principal = await services.tenancy.authenticate(request.headers)
            note_principal(scope, principal)
            session = None
            if self._in_session:
                session = await services.sessions.get(principal, scope["path_params"]["session_id"])
            body = await _read_message(request)
        except KeyholeError as error:
            note_error(scope, error.key)
            await _refusal(error)(scope, receive, send)
            return
        caller = Caller(principal, public_base_url(request, services.settings), session)
        await self._transport.serve(McpCall(services, caller), request, body, send)
