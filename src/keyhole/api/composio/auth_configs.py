"""``/auth_configs…``: per-organization, per-toolkit auth settings (spec 4.5)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.composio import params, renderers, schemas
from keyhole.api.composio.endpoint import endpoint
from keyhole.api.openapi import Answer, describe
from keyhole.api.requests import parse, query_flag, read_json
from keyhole.api.responses import JSONResponse
from keyhole.authconfigs.service import AuthConfigChange, AuthConfigInput
from keyhole.connections.composio_mapping import GENERIC_TYPE, default_scheme
from keyhole.errors import InvalidRequest
from keyhole.services import Services
from keyhole.tenancy.principal import Principal

_TAG = "Auth configs"
_STATUSES = {"ENABLED": True, "DISABLED": False}


async def _body(request: Request, services: Services) -> Any:
    return await read_json(request, services.settings.max_api_body_bytes, empty={})


@describe(
    summary="Create an auth config",
    description="A Composio-managed config is a custom one with the toolkit's natural scheme: "
    "accounts still bring their own credential.",
    tag=_TAG,
    body=schemas.AuthConfigCreateBody,
    body_examples={
        "api_key": {
            "toolkit": {"slug": "api"},
            "auth_config": {"type": "use_custom_auth", "authScheme": "API_KEY", "name": "Billing API"},
        },
        "oauth2_client": {
            "toolkit": {"slug": "api"},
            "auth_config": {
                "type": "use_custom_auth",
                "authScheme": "OAUTH2",
                "credentials": {
                    "client_id": "keyhole-client",
                    "client_secret": "s3cr3t",
                    "authorization_url": "https://auth.example.com/authorize",
                    "token_url": "https://auth.example.com/token",
                    "base_url": "https://api.example.com",
                    "scopes": ["read"],
                },
            },
        },
    },
    answers={201: Answer(renderers.AuthConfigCreated, description="Created")},
)
@endpoint
async def create(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.AuthConfigCreateBody, await _body(request, services))
    options = body.auth_config
    scheme: str
    if isinstance(options, schemas.CustomAuth):
        scheme = options.auth_scheme
    else:
        # No Composio-managed apps here: a "managed" config is a custom one with the toolkit's
        # natural scheme, and accounts still bring their own credential.
        connection_type = services.catalog.get(body.toolkit.slug)
        scheme = "BEARER_TOKEN" if connection_type.id == GENERIC_TYPE else default_scheme(connection_type, {})
    view = await services.auth_configs.create(
        principal,
        AuthConfigInput(
            toolkit_slug=body.toolkit.slug,
            auth_scheme=scheme,
            name=options.name if options is not None else None,
            credentials=(options.credentials or {}) if options is not None else {},
            tool_router_enabled=(
                options.is_enabled_for_tool_router
                if options is not None and options.is_enabled_for_tool_router is not None
                else True
            ),
            tool_access_config=(options.tool_access_config or {}) if options is not None else {},
        ),
    )
    created: renderers.AuthConfigCreated = {
        "auth_config": {
            "id": view.id,
            "auth_scheme": view.auth_scheme,
            "is_composio_managed": False,
            "restrict_to_following_tools": [],
        },
        "toolkit": {"slug": view.toolkit_slug},
    }
    return JSONResponse(created, status_code=201)


@describe(
    summary="List auth configs",
    tag=_TAG,
    query=params.AuthConfigListQuery,
    answers={200: Answer(renderers.Page[renderers.AuthConfig])},
)
@endpoint
async def list_configs(request: Request, services: Services, principal: Principal) -> Response:
    offset, limit = params.paging(request)
    if query_flag(request, "is_composio_managed", False):
        return JSONResponse(params.page([], 0, offset, limit))
    found = await services.auth_configs.page(
        principal,
        toolkit_slugs=params.csv(request, "toolkit_slug"),
        show_disabled=query_flag(request, "show_disabled", True),
        search=request.query_params.get("search") or None,
        offset=offset,
        limit=limit,
    )
    return JSONResponse(
        params.page([renderers.auth_config(v) for v in found.items], found.total, offset, limit)
    )


@describe(summary="Get an auth config", tag=_TAG, answers={200: Answer(renderers.AuthConfig)})
@endpoint
async def get(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.auth_configs.get(principal, request.path_params["config_id"])
    return JSONResponse(renderers.auth_config(view))


@describe(
    summary="Change an auth config",
    description="credentials are merged: a field left out keeps its value, null removes one.",
    tag=_TAG,
    body=schemas.AuthConfigUpdateBody,
    answers={200: Answer(renderers.AuthConfig)},
    errors=(422,),
)
@endpoint
async def update(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.AuthConfigUpdateBody, await _body(request, services))
    view = await services.auth_configs.update(
        principal,
        request.path_params["config_id"],
        AuthConfigChange(
            name=body.name,
            credentials=body.credentials,
            tool_router_enabled=body.is_enabled_for_tool_router,
            tool_access_config=body.tool_access_config,
        ),
    )
    return JSONResponse(renderers.auth_config(view))


@describe(
    summary="Enable or disable an auth config",
    description="A disabled auth config starts no OAuth2 sign-in.",
    tag=_TAG,
    path={"status": {"type": "string", "enum": list(_STATUSES)}},
    answers={200: Answer(renderers.AuthConfigStatusChanged)},
)
@endpoint
async def update_status(request: Request, services: Services, principal: Principal) -> Response:
    status = request.path_params["status"]
    if status not in _STATUSES:
        raise InvalidRequest(
            "the status in the path must be ENABLED or DISABLED",
            key="validation_error",
            metadata={"errors": [{"field": "status", "message": "Invalid enum value"}]},
        )
    enabled = _STATUSES[status]
    await services.auth_configs.set_enabled(principal, request.path_params["config_id"], enabled)
    changed: renderers.AuthConfigStatusChanged = {
        "success": True,
        "status": "ENABLED" if enabled else "DISABLED",
    }
    return JSONResponse(changed)


@describe(
    summary="Delete an auth config",
    description="Connected accounts created from it keep working: their credential is their own.",
    tag=_TAG,
    query=params.DeleteQuery,
    answers={200: Answer(renderers.Success)},
)
@endpoint
async def delete(request: Request, services: Services, principal: Principal) -> Response:
    query_flag(request, "revoke_on_delete", False)
    await services.auth_configs.delete(principal, request.path_params["config_id"])
    done: renderers.Success = {"success": True}
    return JSONResponse(done)
