"""API keys over HTTP: minting a user's key (the SDK's ``users.create_api_key``) and, as a
Keyhole extension, listing an organization's keys and revoking one. A key's secret is in the
answer that mints it and nowhere else."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.polytomic.endpoint import endpoint_for
from keyhole.api.requests import parse, query_flag, read_json
from keyhole.api.responses import JSONResponse
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.service import KeyView
from keyhole.timestamps import timestamp

WIRE_KINDS = {"user": "user", "org": "organization", "partner": "partner"}


class _NoBody(BaseModel):
    """Minting takes no body: ``force`` is a query parameter, and a body naming it is refused
    rather than ignored."""

    model_config = ConfigDict(strict=True, extra="forbid")


def key(view: KeyView) -> dict[str, Any]:
    return {
        "id": view.id,
        "organization_id": view.organization_id,
        "user_id": view.user_id,
        "kind": WIRE_KINDS[view.kind],
        "prefix": view.prefix,
        "name": view.name,
        "created_at": timestamp(view.created_at),
        "revoked_at": timestamp(view.revoked_at),
    }


@endpoint_for(Access.MANAGEMENT)
async def create_user_key(request: Request, services: Services, principal: Principal) -> Response:
    """``?force=true`` revokes the user's other keys first."""
    parse(_NoBody, await read_json(request, services.settings.max_api_body_bytes, empty={}))
    force = query_flag(request, "force")
    path = request.path_params
    minted = await services.tenancy.mint_user_key(
        principal, path["organization_id"], path["user_id"], force=force
    )
    return JSONResponse({"data": {"value": minted.secret, "id": minted.view.id}})


async def _listing(
    services: Services, principal: Principal, organization_id: str, request: Request
) -> Response:
    prefix = request.query_params.get("prefix")
    views = await services.tenancy.organization_keys(principal, organization_id, prefix=prefix)
    return JSONResponse({"data": [key(view) for view in views]})


@endpoint_for(Access.MANAGEMENT)
async def list_keys(request: Request, services: Services, principal: Principal) -> Response:
    return await _listing(services, principal, request.path_params["organization_id"], request)


@endpoint_for(Access.MANAGEMENT)
async def list_current_keys(request: Request, services: Services, principal: Principal) -> Response:
    return await _listing(services, principal, principal.organization_id, request)


@endpoint_for(Access.MANAGEMENT)
async def revoke_key(request: Request, services: Services, principal: Principal) -> Response:
    path = request.path_params
    view = await services.tenancy.revoke_organization_key(principal, path["organization_id"], path["key_id"])
    return JSONResponse({"data": key(view)})


@endpoint_for(Access.MANAGEMENT)
async def revoke_current_key(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.tenancy.revoke_organization_key(
        principal, principal.organization_id, request.path_params["key_id"]
    )
    return JSONResponse({"data": key(view)})
