"""Polytomic shared-connection routes (``connections.shared_connections`` of the official SDK):
list a connection's shared copies (its organization's keys, or the partner key), and share a
connection with another organization of the partner account (the partner key)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.polytomic import schemas
from keyhole.api.polytomic.endpoint import endpoint, endpoint_for
from keyhole.api.requests import parse, read_json
from keyhole.api.responses import JSONResponse
from keyhole.connections.schemas import ConnectionView
from keyhole.connections.sharing import ShareRequest
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.principal import Principal

_NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"  # as ids are stored


class ShareBody(BaseModel):
    """``POST /api/organizations/{org_id}/connections/{connection_id}/shared``."""

    model_config = ConfigDict(strict=True, extra="forbid")

    child_organization_id: str = Field(pattern=_UUID)
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=_NO_CONTROL)

    def request(self) -> ShareRequest:
        return ShareRequest(child_organization_id=self.child_organization_id, name=self.name)


def _listing(views: list[ConnectionView]) -> Response:
    return JSONResponse({"data": [schemas.connection(view) for view in views]})


@endpoint
async def list_shared(request: Request, services: Services, principal: Principal) -> Response:
    return _listing(await services.sharing.copies(principal, request.path_params["connection_id"]))


@endpoint_for(Access.PARTNER)
async def list_partner_shared(request: Request, services: Services, principal: Principal) -> Response:
    views = await services.sharing.partner_copies(
        principal, request.path_params["organization_id"], request.path_params["connection_id"]
    )
    return _listing(views)


@endpoint_for(Access.PARTNER)
async def share(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(ShareBody, await read_json(request, services.settings.max_api_body_bytes))
    view = await services.sharing.share(
        principal,
        request.path_params["organization_id"],
        request.path_params["connection_id"],
        body.request(),
    )
    return JSONResponse({"data": {"id": view.id}})
