"""``GET /api/me``: who the caller is, as the SDK's ``GetIdentityResponseSchema`` has it."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.polytomic.endpoint import endpoint_for
from keyhole.api.responses import JSONResponse
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.credentials import presented_key
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.schemas import IdentityView


def identity(view: IdentityView, method: str) -> dict[str, Any]:
    """A user's id, email and role are set for user keys only; ``method`` is how the key came
    (``bearer``, ``basic`` or ``header``)."""
    data: dict[str, Any] = {
        "organization_id": view.organization_id,
        "organization_name": view.organization_name,
        "is_user": view.kind == "user",
        "is_organization": view.kind == "org",
        "is_partner": view.kind == "partner",
        "is_system": False,
        "credential": {"method": method},
    }
    if view.user_id is not None:
        data.update(id=view.user_id, email=view.email, role=view.role)
    return data


@endpoint_for(Access.IDENTITY)
async def me(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.tenancy.identity(principal)
    # The scheme is the request's, not the key's: one key may come as Bearer or as a header.
    method = presented_key(request.headers).scheme
    return JSONResponse({"data": identity(view, method)})
