"""Polytomic shared-connection routes (``connections.shared_connections`` of the official SDK):
list a connection's shared copies (its organization's keys, or the partner key), and share a
connection with another organization of the partner account (the partner key)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from keyhole.api.openapi import Answer, describe
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


class SharedCopy(TypedDict):
    id: str


class SharedCopyEnvelope(TypedDict):
    data: SharedCopy


def _listing(views: list[ConnectionView]) -> Response:
    body: schemas.ConnectionList = {"data": [schemas.connection(view) for view in views]}
    return JSONResponse(body)


_LISTING_DESCRIPTION = (
    "Each copy has its own id, organization and name; its configuration, secret, status and proxy "
    "setting are the parent's."
)


@describe(
    summary="The shared copies of a connection of the caller's organization",
    description=_LISTING_DESCRIPTION,
    tag="Connections",
    answers={200: Answer(schemas.ConnectionList)},
)
@endpoint
async def list_shared(request: Request, services: Services, principal: Principal) -> Response:
    return _listing(await services.sharing.copies(principal, request.path_params["connection_id"]))


@describe(
    summary="The shared copies of a connection of an organization of the partner account",
    description=_LISTING_DESCRIPTION,
    tag="Connections",
    answers={200: Answer(schemas.ConnectionList)},
)
@endpoint_for(Access.PARTNER)
async def list_partner_shared(request: Request, services: Services, principal: Principal) -> Response:
    views = await services.sharing.partner_copies(
        principal, request.path_params["organization_id"], request.path_params["connection_id"]
    )
    return _listing(views)


@describe(
    summary="Share a connection of the partner's owner organization with another of its organizations",
    description="The copy uses the parent's credential without exposing it; re-keying, disabling or "
    "deleting the parent reaches every copy. One copy per organization (409 `already_shared`, with "
    "the copy's id in `metadata.id`).",
    tag="Connections",
    body=ShareBody,
    body_examples={
        "share": {"child_organization_id": "0b7e5c1e-6f4f-4a57-9d0c-3f1e2a4b5c6d", "name": "Acme CRM"}
    },
    answers={200: Answer(SharedCopyEnvelope, description="The shared copy")},
    # 422: the organization is not the partner's owner, the child is the owner itself, or a reused
    # Idempotency-Key; 409 also for an Idempotency-Key in use.
    errors=(409, 413, 422),
)
@endpoint_for(Access.PARTNER)
async def share(request: Request, services: Services, principal: Principal) -> Response:
    share_body = parse(ShareBody, await read_json(request, services.settings.max_api_body_bytes))
    view = await services.sharing.share(
        principal,
        request.path_params["organization_id"],
        request.path_params["connection_id"],
        share_body.request(),
    )
    answer: SharedCopyEnvelope = {"data": {"id": view.id}}
    return JSONResponse(answer)
