"""``/tool_router/session…``: sessions and their ``proxy_execute`` (spec 4.2, 4.3).

Spellings differ between request and response (``toolkits.enable`` in, ``toolkits.enabled`` out;
``manage_connections.enable`` in, ``enabled`` out), and ``connected_accounts`` is a string per
toolkit on ``/api/v3`` but a list on ``/api/v3.1``: both are accepted, the prefix's form is echoed.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.composio import proxy, schemas
from keyhole.api.composio.endpoint import endpoint
from keyhole.api.composio.renderers import Session, SessionConfig, SessionProxyAnswer
from keyhole.api.links import public_base_url
from keyhole.api.openapi import RATE_LIMITED, Answer, describe
from keyhole.api.requests import parse, read_json
from keyhole.api.responses import JSONResponse
from keyhole.errors import InvalidRequest
from keyhole.services import Services
from keyhole.tenancy.principal import Principal
from keyhole.toolrouter.service import SessionInput, SessionView


def _v31(request: Request) -> bool:
    return request.url.path.startswith("/api/v3.1/")


def _renamed(options: dict[str, Any] | None, renames: dict[str, str]) -> dict[str, Any]:
    return {renames.get(name, name): value for name, value in (options or {}).items()}


def _config(view: SessionView, *, v31: bool) -> SessionConfig:
    options = view.options
    config: SessionConfig = {
        "user_id": view.user_id,
        "execute": options.get("execute") or {"enable_multi_execute": True},
        "preload": options.get("preload") or {"tools": []},
        "search": options.get("search") or {"enable": True},
        "auth_configs": view.auth_configs,
        "connected_accounts": (
            view.connected_accounts
            if v31
            else {slug: ids[0] for slug, ids in view.connected_accounts.items() if ids}
        ),
        "manage_connections": {
            "enabled": True,
            "callback_url": None,
            "enable_connection_removal": True,
            "enable_wait_for_connections": False,
            **_renamed(options.get("manage_connections"), {"enable": "enabled"}),
        },
        "multi_account": options.get("multi_account") or {},
        "tools": options.get("tools") or {},
        "workbench": _renamed(
            options.get("workbench"), {"enable_proxy_execution": "proxy_execution_enabled"}
        ),
    }
    if view.toolkits_mode == "enable":
        config["toolkits"] = {"enabled": view.toolkits}
    elif view.toolkits_mode is not None:
        config["toolkits"] = {"disabled": view.toolkits}
    tags = options.get("tags")
    if isinstance(tags, list):
        config["tags"] = {"enabled": tags, "disabled": []}
    elif isinstance(tags, dict):
        config["tags"] = _renamed(tags, {"enable": "enabled", "disable": "disabled"})
    return config


def _session(request: Request, services: Services, view: SessionView) -> Session:
    return {
        "session_id": view.id,
        "mcp": {
            "type": "http",
            "url": f"{public_base_url(request, services.settings)}/tool_router/{view.id}/mcp",
        },
        "tool_router_tools": [],
        "config_version": view.config_version,
        "config": _config(view, v31=_v31(request)),
        "experimental": {"custom_toolkits": [], "custom_tools": []},
        "warnings": [],
    }


def _reject_response_spelling(payload: Any) -> None:
    toolkits = payload.get("toolkits") if isinstance(payload, dict) else None
    if isinstance(toolkits, dict) and ({"enabled", "disabled"} & set(toolkits)):
        raise InvalidRequest(
            "Validation error while processing request: toolkits takes 'enable' or 'disable' "
            "('enabled'/'disabled' are the response spellings)",
            key="validation_error",
            metadata={"errors": [{"field": "toolkits", "message": "Invalid input"}]},
        )


@describe(
    summary="Create a tool router session",
    description="A session scopes proxy calls to one user: its toolkits, and which auth config or "
    "connected account serves each toolkit. connected_accounts takes one id per toolkit, or a list.",
    tag="Tool router",
    body=schemas.SessionCreateBody,
    body_examples={
        "toolkits_and_accounts": {
            "user_id": "user-42",
            "toolkits": {"enable": ["api"]},
            "connected_accounts": {"api": "0b6f3c1e-5d2a-4e8f-9a7b-3c4d5e6f7a8b"},
        },
        "by_auth_config": {
            "user_id": "user-42",
            "auth_configs": {"api": "ac_4fJq9TzW2mXc7LpR"},
            "manage_connections": {"enable": False},
        },
    },
    answers={201: Answer(Session, description="Created")},
)
@endpoint
async def create(request: Request, services: Services, principal: Principal) -> Response:
    payload = await read_json(request, services.settings.max_api_body_bytes, empty={})
    _reject_response_spelling(payload)
    body = parse(schemas.SessionCreateBody, payload)
    toolkits = body.toolkits
    multi = body.multi_account or {}
    explicit = multi.get("require_explicit_selection", False)
    if not isinstance(explicit, bool):
        raise InvalidRequest(
            "multi_account.require_explicit_selection must be a boolean", key="validation_error"
        )
    options = body.model_dump(
        include={
            "manage_connections",
            "multi_account",
            "tools",
            "tags",
            "preload",
            "search",
            "execute",
            "workbench",
            "experimental",
        },
        exclude_none=True,
    )
    view = await services.sessions.create(
        principal,
        SessionInput(
            user_id=body.user_id,
            toolkits_mode=(
                None
                if toolkits is None
                else "enable"
                if isinstance(toolkits, schemas.ToolkitsEnable)
                else "disable"
            ),
            toolkits=(
                []
                if toolkits is None
                else toolkits.enable
                if isinstance(toolkits, schemas.ToolkitsEnable)
                else toolkits.disable
            ),
            auth_configs=body.auth_configs or {},
            connected_accounts={
                slug: [ids] if isinstance(ids, str) else ids
                for slug, ids in (body.connected_accounts or {}).items()
            },
            require_explicit_selection=explicit,
            options=options,
        ),
    )
    return JSONResponse(_session(request, services, view), status_code=201)


@describe(summary="Get a tool router session", tag="Tool router", answers={200: Answer(Session)})
@endpoint
async def get(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.sessions.get(principal, request.path_params["session_id"])
    return JSONResponse(_session(request, services, view))


@describe(
    summary="Call a toolkit's upstream API in a session",
    description="The session's connected account (or auth config) for toolkit_slug gives the "
    "credential; the rest is as POST /tools/execute/proxy.",
    tag="Tool router",
    body=schemas.SessionProxyBody,
    body_examples={
        "get": {
            "toolkit_slug": "api",
            "endpoint": "/v1/customers?limit=10",
            "method": "GET",
            "parameters": [{"name": "Stripe-Version", "value": "2024-06-20", "type": "header"}],
        }
    },
    answers={200: Answer(SessionProxyAnswer, description="The upstream's answer")},
    errors=proxy.ERRORS,
    error_headers=RATE_LIMITED,
)
@endpoint
async def proxy_execute(request: Request, services: Services, principal: Principal) -> Response:
    session = await services.sessions.get(principal, request.path_params["session_id"])
    body, size = await proxy.read_call(request, schemas.SessionProxyBody)
    target = await services.sessions.proxy_target(
        principal, session, body.toolkit_slug, proxy.inline_credentials(body)
    )
    answer: SessionProxyAnswer = {
        "result_type": "completed",
        **await proxy.run(request, services, principal, target, body, size),
    }
    return JSONResponse(answer)
