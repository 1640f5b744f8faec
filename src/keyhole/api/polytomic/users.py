"""Polytomic user routes: the caller's own organization's users (``/api/organization/users``) and
those of an organization the caller manages (``/api/organizations/{org_id}/users``), as the
official SDK's ``UsersClient`` sends and reads them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
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


class User(TypedDict):
    id: str
    email: str
    organization_id: str
    role: str
    role_ids: list[str]
    created_at: str


class UserEnvelope(TypedDict):
    data: User


class UserList(TypedDict):
    data: list[User]


class CurrentOrgUser(User):
    harbor_ids: list[str]
    harbor_only: bool


class CurrentOrgUserEnvelope(TypedDict):
    data: CurrentOrgUser


class CurrentOrgUserList(TypedDict):
    data: list[CurrentOrgUser]


def user(view: UserView) -> User:
    """The SDK's ``User``: ``role_ids`` names the role, the one identifier a Keyhole role has."""
    return {
        "id": view.id,
        "email": view.email,
        "organization_id": view.organization_id,
        "role": view.role,
        "role_ids": [view.role],
        "created_at": timestamp(view.created_at),
    }


def current_org_user(view: UserView) -> CurrentOrgUser:
    """The SDK's ``CurrentOrgUserResponse`` (Keyhole has no Harbors)."""
    return {**user(view), "harbor_ids": [], "harbor_only": False}


async def _create_request(request: Request, services: Services) -> UserRequest:
    body = await read_json(request, services.settings.max_api_body_bytes)
    return parse(CreateUserBody, body).request()


async def _update_request(request: Request, services: Services) -> UserRequest:
    body = await read_json(request, services.settings.max_api_body_bytes, empty={})
    return parse(UpdateUserBody, body).request()


def _answer(view: UserView) -> Response:
    body: UserEnvelope = {"data": user(view)}
    return JSONResponse(body)


_CREATE_EXAMPLES = {
    "member": {"email": "ada@example.com"},
    "admin": {"email": "grace@example.com", "role": "admin"},
}
_UPDATE_EXAMPLES = {"role": {"role": "admin"}, "role_ids": {"role_ids": ["member"]}}
# 409: the email is taken, or the Idempotency-Key is in use; 422: an email that cannot be an
# address, an unknown role, or an Idempotency-Key reused for another request.
_CREATE_ERRORS = (409, 413, 422)
_CREATE_DESCRIPTION = (
    "The role is named by `role` or by a one-entry `role_ids` (not both); a user is a `member` unless "
    "named otherwise. Emails are unique in an organization, compared trimmed and lower-cased."
)
_UPDATE_DESCRIPTION = "Changes the role when one is named; an email, when sent, is checked but not applied."
_DELETE_DESCRIPTION = "The user's keys stop working at once. A key cannot delete its own user (409)."


# -- the caller's own organization ---------------------------------------------------------------


@describe(
    summary="The users of the caller's organization",
    tag="Users",
    answers={200: Answer(CurrentOrgUserList)},
)
@endpoint_for(Access.IDENTITY)
async def list_current_users(request: Request, services: Services, principal: Principal) -> Response:
    views = await services.users.list_current(principal)
    body: CurrentOrgUserList = {"data": [current_org_user(view) for view in views]}
    return JSONResponse(body)


@describe(
    summary="A user of the caller's organization",
    tag="Users",
    answers={200: Answer(CurrentOrgUserEnvelope)},
)
@endpoint_for(Access.IDENTITY)
async def get_current_user(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.users.get_current(principal, request.path_params["user_id"])
    body: CurrentOrgUserEnvelope = {"data": current_org_user(view)}
    return JSONResponse(body)


@describe(
    summary="Create a user in the caller's organization",
    description=_CREATE_DESCRIPTION,
    tag="Users",
    body=CreateUserBody,
    body_examples=_CREATE_EXAMPLES,
    answers={200: Answer(UserEnvelope)},
    errors=_CREATE_ERRORS,
)
@endpoint_for(Access.MANAGEMENT)
async def create_current_user(request: Request, services: Services, principal: Principal) -> Response:
    user_request = await _create_request(request, services)
    return _answer(await services.users.create(principal, principal.organization_id, user_request))


@describe(
    summary="Change the role of a user of the caller's organization",
    description=_UPDATE_DESCRIPTION,
    tag="Users",
    body=UpdateUserBody,
    body_required=False,
    body_examples=_UPDATE_EXAMPLES,
    answers={200: Answer(UserEnvelope)},
    errors=(413, 422),
)
@endpoint_for(Access.MANAGEMENT)
async def update_current_user(request: Request, services: Services, principal: Principal) -> Response:
    user_request = await _update_request(request, services)
    view = await services.users.update(
        principal, principal.organization_id, request.path_params["user_id"], user_request
    )
    return _answer(view)


@describe(
    summary="Delete a user of the caller's organization",
    description=_DELETE_DESCRIPTION,
    tag="Users",
    answers={200: Answer(UserEnvelope, description="The deleted user")},
    errors=(409,),
)
@endpoint_for(Access.MANAGEMENT)
async def delete_current_user(request: Request, services: Services, principal: Principal) -> Response:
    return _answer(
        await services.users.delete(principal, principal.organization_id, request.path_params["user_id"])
    )


# -- an organization the caller manages ----------------------------------------------------------


@describe(
    summary="The users of an organization the caller manages",
    tag="Users",
    answers={200: Answer(UserList)},
)
@endpoint_for(Access.MANAGEMENT)
async def list_users(request: Request, services: Services, principal: Principal) -> Response:
    views = await services.users.list(principal, request.path_params["organization_id"])
    body: UserList = {"data": [user(view) for view in views]}
    return JSONResponse(body)


@describe(
    summary="A user of an organization the caller manages",
    tag="Users",
    answers={200: Answer(UserEnvelope)},
)
@endpoint_for(Access.MANAGEMENT)
async def get_user(request: Request, services: Services, principal: Principal) -> Response:
    path = request.path_params
    return _answer(await services.users.get(principal, path["organization_id"], path["user_id"]))


@describe(
    summary="Create a user in an organization the caller manages",
    description=_CREATE_DESCRIPTION,
    tag="Users",
    body=CreateUserBody,
    body_examples=_CREATE_EXAMPLES,
    answers={200: Answer(UserEnvelope)},
    errors=_CREATE_ERRORS,
)
@endpoint_for(Access.MANAGEMENT)
async def create_user(request: Request, services: Services, principal: Principal) -> Response:
    user_request = await _create_request(request, services)
    return _answer(
        await services.users.create(principal, request.path_params["organization_id"], user_request)
    )


@describe(
    summary="Change the role of a user of an organization the caller manages",
    description=_UPDATE_DESCRIPTION,
    tag="Users",
    body=UpdateUserBody,
    body_required=False,
    body_examples=_UPDATE_EXAMPLES,
    answers={200: Answer(UserEnvelope)},
    errors=(413, 422),
)
@endpoint_for(Access.MANAGEMENT)
async def update_user(request: Request, services: Services, principal: Principal) -> Response:
    user_request = await _update_request(request, services)
    path = request.path_params
    return _answer(
        await services.users.update(principal, path["organization_id"], path["user_id"], user_request)
    )


@describe(
    summary="Delete a user of an organization the caller manages",
    description=_DELETE_DESCRIPTION,
    tag="Users",
    answers={200: Answer(UserEnvelope, description="The deleted user")},
    errors=(409,),
)
@endpoint_for(Access.MANAGEMENT)
async def delete_user(request: Request, services: Services, principal: Principal) -> Response:
    path = request.path_params
    return _answer(await services.users.delete(principal, path["organization_id"], path["user_id"]))
