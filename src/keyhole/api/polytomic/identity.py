"""``GET /api/me``: who the caller is, as the SDK's ``GetIdentityResponseSchema`` has it."""

from __future__ import annotations

from typing import NotRequired

from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from keyhole.api.openapi import Answer, describe
from keyhole.api.polytomic.endpoint import endpoint_for
from keyhole.api.responses import JSONResponse
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.credentials import presented_key
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.schemas import IdentityView


class Credential(TypedDict):
    method: str  # bearer, basic or header


class Identity(TypedDict):
    organization_id: str
    organization_name: str
    is_user: bool
    is_organization: bool
    is_partner: bool
    is_system: bool
    credential: Credential
    id: NotRequired[str]
    email: NotRequired[str]
    role: NotRequired[str]


class IdentityEnvelope(TypedDict):
    data: Identity


def identity(view: IdentityView, method: str) -> Identity:
    """A user's id, email and role are set for user keys only; ``method`` is how the key came
    (``bearer``, ``basic`` or ``header``)."""
    data: Identity = {
        "organization_id": view.organization_id,
        "organization_name": view.organization_name,
        "is_user": view.kind == "user",
        "is_organization": view.kind == "org",
        "is_partner": view.kind == "partner",
        "is_system": False,
        "credential": {"method": method},
    }
    # The service sets the three together, from the user's row.
    if view.user_id is not None and view.email is not None and view.role is not None:
        data["id"] = view.user_id
        data["email"] = view.email
        data["role"] = view.role
    return data


@describe(
    summary="Who the caller is",
    description="The organization the key acts for and the kind of key; a user key's user too "
    "(`id`, `email`, `role`).",
    tag="Identity",
    answers={200: Answer(IdentityEnvelope)},
)
@endpoint_for(Access.IDENTITY)
async def me(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.tenancy.identity(principal)
    # The scheme is the request's, not the key's: one key may come as Bearer or as a header.
    method = presented_key(request.headers).scheme
    body: IdentityEnvelope = {"data": identity(view, method)}
    return JSONResponse(body)
