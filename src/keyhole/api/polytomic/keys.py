"""API keys over HTTP: minting a user's key (the SDK's ``users.create_api_key``) and, as a
Keyhole extension, listing an organization's keys and revoking one. A key's secret is in the
answer that mints it and nowhere else."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from keyhole.api.openapi import Answer, describe
from keyhole.api.polytomic.endpoint import endpoint_for
from keyhole.api.requests import parse, query_flag, read_json
from keyhole.api.responses import JSONResponse
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.keys import PREFIX_LENGTH
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.service import PREFIX_FILTER, KeyView
from keyhole.timestamps import timestamp

WireKind = Literal["user", "organization", "partner"]
WIRE_KINDS: dict[str, WireKind] = {"user": "user", "org": "organization", "partner": "partner"}


class MintUserKeyBody(BaseModel):
    """Minting takes no body: ``force`` is a query parameter, and a body naming it is refused
    rather than ignored."""

    model_config = ConfigDict(strict=True, extra="forbid")


class MintQuery(BaseModel):
    """Read by ``query_flag``: ``true``/``1`` or ``false``/``0`` in any case; empty is false."""

    force: bool = Field(default=False, description="Revoke the user's other keys first")


class KeyListingQuery(BaseModel):
    """Checked by the tenancy service (``invalid_prefix``), which the operator's listing shares."""

    prefix: str | None = Field(
        default=None,
        max_length=PREFIX_LENGTH,
        pattern=PREFIX_FILTER.pattern,
        description="Only keys whose displayed prefix starts with this (never a whole key)",
    )


class ApiKey(TypedDict):
    id: str
    organization_id: str
    user_id: str | None
    kind: WireKind
    prefix: str
    name: str | None
    created_at: str
    revoked_at: str | None


class ApiKeyEnvelope(TypedDict):
    data: ApiKey


class ApiKeyList(TypedDict):
    data: list[ApiKey]


class MintedUserKey(TypedDict):
    value: str
    id: str


class MintedUserKeyEnvelope(TypedDict):
    data: MintedUserKey


def key(view: KeyView) -> ApiKey:
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


def _answer(view: KeyView) -> Response:
    body: ApiKeyEnvelope = {"data": key(view)}
    return JSONResponse(body)


@describe(
    summary="Mint a key for a user of an organization the caller manages",
    description="The answer holds the key's secret (`value`), shown this once. `?force=true` revokes "
    "the user's other keys in the same step.",
    tag="Users",
    body=MintUserKeyBody,
    body_required=False,
    query=MintQuery,
    answers={200: Answer(MintedUserKeyEnvelope)},
    errors=(409, 413, 422),  # the Idempotency-Key's: in use, reused for another request
)
@endpoint_for(Access.MANAGEMENT)
async def create_user_key(request: Request, services: Services, principal: Principal) -> Response:
    parse(MintUserKeyBody, await read_json(request, services.settings.max_api_body_bytes, empty={}))
    force = query_flag(request, "force")
    path = request.path_params
    minted = await services.tenancy.mint_user_key(
        principal, path["organization_id"], path["user_id"], force=force
    )
    body: MintedUserKeyEnvelope = {"data": {"value": minted.secret, "id": minted.view.id}}
    return JSONResponse(body)


async def _listing(
    services: Services, principal: Principal, organization_id: str, request: Request
) -> Response:
    prefix = request.query_params.get("prefix")
    views = await services.tenancy.organization_keys(principal, organization_id, prefix=prefix)
    body: ApiKeyList = {"data": [key(view) for view in views]}
    return JSONResponse(body)


_LISTING_DESCRIPTION = (
    "Revoked keys included, oldest first. Secrets are never listed, only each key's prefix."
)
_REVOKING_DESCRIPTION = "The key stops working at once; revoking a revoked key changes nothing."


@describe(
    summary="The keys of an organization the caller manages",
    description=_LISTING_DESCRIPTION,
    tag="Keys",
    query=KeyListingQuery,
    answers={200: Answer(ApiKeyList)},
    extension=True,
)
@endpoint_for(Access.MANAGEMENT)
async def list_keys(request: Request, services: Services, principal: Principal) -> Response:
    return await _listing(services, principal, request.path_params["organization_id"], request)


@describe(
    summary="The keys of the caller's organization",
    description=_LISTING_DESCRIPTION,
    tag="Keys",
    query=KeyListingQuery,
    answers={200: Answer(ApiKeyList)},
    extension=True,
)
@endpoint_for(Access.MANAGEMENT)
async def list_current_keys(request: Request, services: Services, principal: Principal) -> Response:
    return await _listing(services, principal, principal.organization_id, request)


@describe(
    summary="Revoke a key of an organization the caller manages",
    description=_REVOKING_DESCRIPTION,
    tag="Keys",
    answers={200: Answer(ApiKeyEnvelope, description="The revoked key")},
    extension=True,
)
@endpoint_for(Access.MANAGEMENT)
async def revoke_key(request: Request, services: Services, principal: Principal) -> Response:
    path = request.path_params
    return _answer(
        await services.tenancy.revoke_organization_key(principal, path["organization_id"], path["key_id"])
    )


@describe(
    summary="Revoke a key of the caller's organization",
    description=_REVOKING_DESCRIPTION,
    tag="Keys",
    answers={200: Answer(ApiKeyEnvelope, description="The revoked key")},
    extension=True,
)
@endpoint_for(Access.MANAGEMENT)
async def revoke_current_key(request: Request, services: Services, principal: Principal) -> Response:
    return _answer(
        await services.tenancy.revoke_organization_key(
            principal, principal.organization_id, request.path_params["key_id"]
        )
    )
