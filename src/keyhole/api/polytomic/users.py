"""Polytomic user routes: the caller's own organization's users (``/api/organization/users``) and
those of an organization the caller manages (``/api/organizations/{org_id}/users``), as the
official SDK's ``UsersClient`` sends and reads them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.polytomic.endpoint import endpoint_for
from keyhole.api.requests import parse, read_json
from keyhole.api.responses import JSONResponse
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.schemas import UserRequest, UserView
from keyhole.timestamps import timestamp


class _RoleBody(BaseModel):
    """``role`` (a role's name) or ``role_ids`` (a one-entry list naming it); null is absent."""

    model_config = ConfigDict(strict=True, extra="forbid")

    role: str | None = None
    role_ids: list[str] | None = None


class CreateUserBody(_RoleBody):
    email: str

    def request(self) -> UserRequest:
        return UserRequest(self.email, self.role, _tuple(self.role_ids))


class UpdateUserBody(_RoleBody):
    """The SDK sends ``email`` to the partner route; it is checked, not applied."""

    email: str | None = None

    def request(self) -> UserRequest:
        return UserRequest(self.email, self.role, _tuple(self.role_ids))


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def user(view: UserView) -> dict[str, Any]:
    """The SDK's ``User``: ``role_ids`` names the role, the one identifier a Keyhole role has."""
    return {
        "id": view.id,
        "email": view.email,
        "organization_id": view.organization_id,
        "role": view.role,
        "role_ids": [view.role],
        "created_at": timestamp(view.created_at),
    }


def current_org_user(view: UserView) -> dict[str, Any]:
    """The SDK's ``CurrentOrgUserResponse`` (Keyhole has no Harbors)."""
    return {**user(view), "harbor_ids": [], "harbor_only": False}


async def _create_request(request: Request, services: Services) -> UserRequest:
    body = await read_json(request, services.settings.max_api_body_bytes)
    return parse(CreateUserBody, body).request()


async def _update_request(request: Request, services: Services) -> UserRequest:
    body = await read_json(request, services.settings.max_api_body_bytes, empty={})
    return parse(UpdateUserBody, body).request()


# -- the caller's own organization ---------------------------------------------------------------


@endpoint_for(Access.IDENTITY)
async def list_current_users(request: Request, services: Services, principal: Principal) -> Response:
    views = await services.users.list_current(principal)
    return JSONResponse({"data": [current_org_user(view) for view in views]})


@endpoint_for(Access.IDENTITY)
async def get_current_user(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.users.get_current(principal, request.path_params["user_id"])
    return JSONResponse({"data": current_org_user(view)})


@endpoint_for(Access.MANAGEMENT)
async def create_current_user(request: Request, services: Services, principal: Principal) -> Response:
    user_request = await _create_request(request, services)
    view = await services.users.create(principal, principal.organization_id, user_request)
    return JSONResponse({"data": user(view)})


@endpoint_for(Access.MANAGEMENT)
async def update_current_user(request: Request, services: Services, principal: Principal) -> Response:
    user_request = await _update_request(request, services)
    view = await services.users.update(
        principal, principal.organization_id, request.path_params["user_id"], user_request
    )
    return JSONResponse({"data": user(view)})


@endpoint_for(Access.MANAGEMENT)
async def delete_current_user(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.users.delete(principal, principal.organization_id, request.path_params["user_id"])
    return JSONResponse({"data": user(view)})


# -- an organization the caller manages ----------------------------------------------------------


@endpoint_for(Access.MANAGEMENT)
async def list_users(request: Request, services: Services, principal: Principal) -> Response:
    views = await services.users.list(principal, request.path_params["organization_id"])
    return JSONResponse({"data": [user(view) for view in views]})


@endpoint_for(Access.MANAGEMENT)
async def get_user(request: Request, services: Services, principal: Principal) -> Response:
    path = request.path_params
    view = await services.users.get(principal, path["organization_id"], path["user_id"])
    return JSONResponse({"data": user(view)})


@endpoint_for(Access.MANAGEMENT)
async def create_user(request: Request, services: Services, principal: Principal) -> Response:
    user_request = await _create_request(request, services)
    view = await services.users.create(principal, request.path_params["organization_id"], user_request)
    return JSONResponse({"data": user(view)})


@endpoint_for(Access.MANAGEMENT)
async def update_user(request: Request, services: Services, principal: Principal) -> Response:
    user_request = await _update_request(request, services)
    path = request.path_params
    view = await services.users.update(principal, path["organization_id"], path["user_id"], user_request)
    return JSONResponse({"data": user(view)})


@endpoint_for(Access.MANAGEMENT)
async def delete_user(request: Request, services: Services, principal: Principal) -> Response:
    path = request.path_params
    view = await services.users.delete(principal, path["organization_id"], path["user_id"])
    return JSONResponse({"data": user(view)})
