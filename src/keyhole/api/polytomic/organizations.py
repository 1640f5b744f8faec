"""Polytomic organization routes: the caller's own organization, and a partner account's
organizations (``OrganizationClient`` of the official SDK)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.polytomic.endpoint import endpoint_for
from keyhole.api.requests import parse, read_json
from keyhole.api.responses import JSONResponse
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.schemas import OrganizationSettings, OrganizationView
from keyhole.timestamps import timestamp

_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"


class OrganizationBody(BaseModel):
    """``POST /api/organizations`` and ``PUT /api/organizations/{id}`` (SSO replaced in full)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=_NO_CONTROL)
    issuer: str | None = Field(default=None, max_length=2048, pattern=_NO_CONTROL)
    sso_domain: str | None = Field(default=None, max_length=255, pattern=_NO_CONTROL)
    sso_org_id: str | None = Field(default=None, max_length=255, pattern=_NO_CONTROL)
    client_id: str | None = Field(default=None, max_length=255, pattern=_NO_CONTROL)
    client_secret: str | None = Field(default=None, max_length=4096)

    def settings(self) -> OrganizationSettings:
        return OrganizationSettings(
            name=self.name,
            sso_issuer=self.issuer,
            sso_domain=self.sso_domain,
            sso_org_id=self.sso_org_id,
            sso_client_id=self.client_id,
            sso_client_secret=self.client_secret,
        )


def organization(view: OrganizationView) -> dict[str, Any]:
    """The SDK's ``Organization``; the client secret is write-only (only whether it is set)."""
    return {
        "id": view.id,
        "name": view.name,
        "issuer": view.sso_issuer,
        "sso_domain": view.sso_domain,
        "sso_org_id": view.sso_org_id,
        "client_id": view.sso_client_id,
        "client_secret_set": view.sso_client_secret_set,
        "partner_organization_id": view.partner_organization_id,
        "created_at": timestamp(view.created_at),
    }


async def _settings(request: Request, services: Services) -> OrganizationSettings:
    body = await read_json(request, services.settings.max_api_body_bytes)
    return parse(OrganizationBody, body).settings()


@endpoint_for(Access.IDENTITY)
async def current(request: Request, services: Services, principal: Principal) -> Response:
    return JSONResponse({"data": organization(await services.organizations.current(principal))})


@endpoint_for(Access.PARTNER)
async def list_organizations(request: Request, services: Services, principal: Principal) -> Response:
    views = await services.organizations.list(principal)
    return JSONResponse({"data": [organization(view) for view in views]})


@endpoint_for(Access.PARTNER)
async def create_organization(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.organizations.create(principal, await _settings(request, services))
    return JSONResponse({"data": organization(view)})


@endpoint_for(Access.PARTNER)
async def get_organization(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.organizations.get(principal, request.path_params["organization_id"])
    return JSONResponse({"data": organization(view)})


@endpoint_for(Access.PARTNER)
async def update_organization(request: Request, services: Services, principal: Principal) -> Response:
    settings = await _settings(request, services)
    view = await services.organizations.update(principal, request.path_params["organization_id"], settings)
    return JSONResponse({"data": organization(view)})


@endpoint_for(Access.PARTNER)
async def delete_organization(request: Request, services: Services, principal: Principal) -> Response:
    await services.organizations.delete(principal, request.path_params["organization_id"])
    return Response(status_code=204)
