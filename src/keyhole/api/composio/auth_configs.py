"""``/auth_configs…``: per-organization, per-toolkit auth settings (spec 4.5)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.composio import params, renderers, schemas
from keyhole.api.composio.endpoint import endpoint
from keyhole.api.requests import parse, query_flag, read_json
from keyhole.api.responses import JSONResponse
from keyhole.authconfigs.service import AuthConfigChange, AuthConfigInput
from keyhole.connections.composio_mapping import GENERIC_TYPE, default_scheme
from keyhole.errors import InvalidRequest
from keyhole.services import Services
from keyhole.tenancy.principal import Principal

_STATUSES = {"ENABLED": True, "DISABLED": False}


async def _body(request: Request, services: Services) -> Any:
    return await read_json(request, services.settings.max_api_body_bytes, empty={})


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
    return JSONResponse(
        {
            "auth_config": {
                "id": view.id,
                "auth_scheme": view.auth_scheme,
                "is_composio_managed": False,
                "restrict_to_following_tools": [],
            },
            "toolkit": {"slug": view.toolkit_slug},
        },
        status_code=201,
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


@endpoint
async def get(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.auth_configs.get(principal, request.path_params["config_id"])
    return JSONResponse(renderers.auth_config(view))


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


@endpoint
async def update_status(request: Request, services: Services, principal: Principal) -> Response:
    status = request.path_params["status"]
    if status not in _STATUSES:
        raise InvalidRequest(
            "the status in the path must be ENABLED or DISABLED",
            key="validation_error",
            metadata={"errors": [{"field": "status", "message": "Invalid enum value"}]},
        )
    await services.auth_configs.set_enabled(principal, request.path_params["config_id"], _STATUSES[status])
    return JSONResponse({"success": True, "status": status})


@endpoint
async def delete(request: Request, services: Services, principal: Principal) -> Response:
    query_flag(request, "revoke_on_delete", False)
    await services.auth_configs.delete(principal, request.path_params["config_id"])
    return JSONResponse({"success": True})
