"""Every route of the Composio dialect, mounted under both ``/api/v3`` and ``/api/v3.1``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyhole.api.composio import auth_configs, connected_accounts, proxy, sessions, toolkits
from keyhole.api.composio.errors import ComposioErrorEnvelope
from keyhole.api.openapi import Section

PREFIXES = ("/api/v3", "/api/v3.1")

_Handler = Callable[[Request], Awaitable[Response]]
# Fixed paths come before parameterised ones.
_ROUTES: list[tuple[str, str, _Handler]] = [
    ("/tools/execute/proxy", "POST", proxy.execute),
    ("/tool_router/session", "POST", sessions.create),
    ("/tool_router/session/{session_id}", "GET", sessions.get),
    ("/tool_router/session/{session_id}/proxy_execute", "POST", sessions.proxy_execute),
    ("/connected_accounts", "POST", connected_accounts.create),
    ("/connected_accounts", "GET", connected_accounts.list_accounts),
    ("/connected_accounts/link", "POST", connected_accounts.link),
    ("/connected_accounts/{account_id}", "GET", connected_accounts.get),
    ("/connected_accounts/{account_id}", "PATCH", connected_accounts.patch),
    ("/connected_accounts/{account_id}", "DELETE", connected_accounts.delete),
    ("/connected_accounts/{account_id}/status", "PATCH", connected_accounts.update_status),
    ("/connected_accounts/{account_id}/refresh", "POST", connected_accounts.refresh),
    ("/auth_configs", "POST", auth_configs.create),
    ("/auth_configs", "GET", auth_configs.list_configs),
    ("/auth_configs/{config_id}", "GET", auth_configs.get),
    ("/auth_configs/{config_id}", "PATCH", auth_configs.update),
    ("/auth_configs/{config_id}", "DELETE", auth_configs.delete),
    ("/auth_configs/{config_id}/{status}", "PATCH", auth_configs.update_status),
    ("/toolkits", "GET", toolkits.list_toolkits),
    ("/toolkits/{slug}", "GET", toolkits.get),
]

routes: list[BaseRoute] = [
    Route(prefix + path, handler, methods=[method])
    for prefix in PREFIXES
    for path, method, handler in _ROUTES
]
# Also served ahead of the router (``api.fast_routes``): no route before them matches their paths.
proxy_routes = [
    route
    for route in routes
    if isinstance(route, Route) and route.endpoint in (proxy.execute, sessions.proxy_execute)
]

section = Section(
    routes=routes,
    error_shape=ComposioErrorEnvelope,
    common_errors=(400, 401, 403, 404, 429, 503),
    operation_prefix="composio_",
    variants={"/api/v3.1/": "_v3_1"},
    empty_query_is_absent=True,
    tag_descriptions={
        "Tools": "Calls through a connected account to its upstream API.",
        "Connected accounts": "Connections seen as Composio connected accounts.",
        "Auth configs": "How a toolkit's accounts authenticate.",
        "Tool router": "Sessions scoped to a user, their toolkits and connected accounts.",
        "Toolkits": "The catalog seen as Composio toolkits.",
    },
)
