"""Polytomic organization routes: the caller's own organization, and a partner account's
organizations (``OrganizationClient`` of the official SDK)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from keyhole.api.openapi import Answer, describe
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


class Organization(TypedDict):
    id: str
    name: str
    issuer: str | None
    sso_domain: str | None
    sso_org_id: str | None
    client_id: str | None
    client_secret_set: bool
    partner_organization_id: str | None
    created_at: str


class OrganizationEnvelope(TypedDict):
    data: Organization


class OrganizationList(TypedDict):
    data: list[Organization]


def organization(view: OrganizationView) -> Organization:
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


def _answer(view: OrganizationView) -> Response:
    body: OrganizationEnvelope = {"data": organization(view)}
    return JSONResponse(body)


_SSO_EXAMPLE = {
    "name": "Acme",
    "issuer": "https://login.example.com/",
    "sso_domain": "acme.example.com",
    "sso_org_id": "org_123",
    "client_id": "keyhole",
    "client_secret": "the-client-secret",
}


@describe(
    summary="The organization the caller's key acts for",
    tag="Organizations",
    answers={200: Answer(OrganizationEnvelope)},
)
@endpoint_for(Access.IDENTITY)
async def current(request: Request, services: Services, principal: Principal) -> Response:
    return _answer(await services.organizations.current(principal))


@describe(
    summary="The partner account's organizations",
    description="The partner's owner organization first, then the organizations it manages, oldest first.",
    tag="Organizations",
    answers={200: Answer(OrganizationList)},
)
@endpoint_for(Access.PARTNER)
async def list_organizations(request: Request, services: Services, principal: Principal) -> Response:
    views = await services.organizations.list(principal)
    body: OrganizationList = {"data": [organization(view) for view in views]}
    return JSONResponse(body)


@describe(
    summary="Create an organization managed by the partner account",
    description="Names are unique within a partner account (409 otherwise). The client secret is "
    "write-only: answers say only whether one is set.",
    tag="Organizations",
    body=OrganizationBody,
    body_examples={"name only": {"name": "Acme"}, "with SSO": _SSO_EXAMPLE},
    answers={200: Answer(OrganizationEnvelope)},
    errors=(409, 413, 422),
)
@endpoint_for(Access.PARTNER)
async def create_organization(request: Request, services: Services, principal: Principal) -> Response:
    return _answer(await services.organizations.create(principal, await _settings(request, services)))


@describe(
    summary="An organization of the partner account",
    tag="Organizations",
    answers={200: Answer(OrganizationEnvelope)},
)
@endpoint_for(Access.PARTNER)
async def get_organization(request: Request, services: Services, principal: Principal) -> Response:
    return _answer(await services.organizations.get(principal, request.path_params["organization_id"]))


@describe(
    summary="Rename an organization and replace its SSO settings",
    description="SSO settings are replaced in full: a field left out is cleared.",
    tag="Organizations",
    body=OrganizationBody,
    body_examples={"rename": {"name": "Acme Europe"}},
    answers={200: Answer(OrganizationEnvelope)},
    errors=(409, 413),
)
@endpoint_for(Access.PARTNER)
async def update_organization(request: Request, services: Services, principal: Principal) -> Response:
    settings = await _settings(request, services)
    return _answer(
        await services.organizations.update(principal, request.path_params["organization_id"], settings)
    )


@describe(
    summary="Delete an organization the partner account manages",
    description="Its users, keys, connections (secrets included), sessions, queries, jobs and stored "
    "bodies go with it, and so do shared copies it holds or others hold of its connections. A partner "
    "key cannot delete its own owner organization (403).",
    tag="Organizations",
    answers={204: Answer(description="Deleted")},
)
@endpoint_for(Access.PARTNER)
async def delete_organization(request: Request, services: Services, principal: Principal) -> Response:
    await services.organizations.delete(principal, request.path_params["organization_id"])
    return Response(status_code=204)
