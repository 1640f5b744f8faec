"""``/connected_accounts…``: connections seen as Composio connected accounts (spec 4.4)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keyhole.accounts.service import STATUSES, AccountChange, AccountFilter, AccountInput
from keyhole.api.composio import params, renderers, schemas
from keyhole.api.composio.endpoint import endpoint
from keyhole.api.links import public_base_url
from keyhole.api.oauth import DONE_PATH
from keyhole.api.openapi import Answer, describe
from keyhole.api.requests import parse, query_flag, read_json
from keyhole.api.responses import JSONResponse
from keyhole.errors import InvalidRequest
from keyhole.oauth.flows import CALLBACK_PATH, FlowStart
from keyhole.services import Services
from keyhole.tenancy.principal import Principal
from keyhole.timestamps import timestamp

_TAG = "Connected accounts"
_API_KEY_EXAMPLE = {
    "auth_config": {"id": "ac_4fJq9TzW2mXc7LpR"},
    "connection": {
        "user_id": "user-42",
        "state": {
            "authScheme": "API_KEY",
            "val": {"status": "ACTIVE", "api_key": "sk_live_51Hx", "base_url": "https://api.example.com/v1"},
        },
        "alias": "billing",
    },
}
_OAUTH2_EXAMPLE = {
    "auth_config": {"id": "ac_8kDn3VbY6sQe1HtM"},
    "connection": {"user_id": "user-42", "callback_url": "https://app.example.com/connected"},
}


async def _body(request: Request, services: Services) -> Any:
    return await read_json(request, services.settings.max_api_body_bytes, empty={})


@describe(
    summary="Create a connected account",
    description="With a state carrying the credential (ACTIVE, or no status), the account is stored "
    "ACTIVE. Without one, on an OAUTH2 auth config of the api toolkit, the account is created "
    "INITIATED and redirect_url is where the user signs in.",
    tag=_TAG,
    body=schemas.AccountCreateBody,
    body_examples={"api_key": _API_KEY_EXAMPLE, "oauth2_sign_in": _OAUTH2_EXAMPLE},
    answers={201: Answer(renderers.AccountCreated, description="Created")},
    errors=(409, 422),
)
@endpoint
async def create(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.AccountCreateBody, await _body(request, services))
    connection = body.connection
    state = connection.state or connection.data
    if (state is None or state.val.get("status") == "INITIATED") and await services.oauth.starts_flow(
        principal, body.auth_config.id
    ):
        started = await services.oauth.initiate_account(
            principal,
            auth_config_id=body.auth_config.id,
            user_id=connection.user_id or "default",
            alias=connection.alias,
            val=state.val if state is not None else {},
            redirect_url=connection.callback_url or connection.redirect_uri or _done_url(request, services),
            callback_url=public_base_url(request, services.settings) + CALLBACK_PATH,
        )
        return _initiated(started, body.auth_config.id)
    view = await services.accounts.create(
        principal,
        AccountInput(
            auth_config_id=body.auth_config.id,
            user_id=connection.user_id,
            auth_scheme=state.auth_scheme if state is not None else None,
            val=state.val if state is not None else {},
            alias=connection.alias,
            validate=bool(body.validate_credentials),
        ),
    )
    created: renderers.AccountCreated = {
        "id": view.id,
        "connectionData": renderers.account_state(view),
        "status": view.status,
        "redirect_url": None,
        "redirect_uri": None,
        "deprecated": {"authConfigUuid": view.auth_config_id or "", "uuid": view.id},
    }
    return JSONResponse(created, status_code=201)


def _done_url(request: Request, services: Services) -> str:
    return public_base_url(request, services.settings) + DONE_PATH


def _initiated(started: FlowStart, auth_config_id: str) -> Response:
    created: renderers.AccountCreated = {
        "id": started.connection_id,
        "connectionData": {
            "authScheme": "OAUTH2",
            "val": {"status": "INITIATED", "redirectUrl": started.redirect_url},
        },
        "status": "INITIATED",
        "redirect_url": started.redirect_url,
        "redirect_uri": started.redirect_url,
        "deprecated": {"authConfigUuid": auth_config_id, "uuid": started.connection_id},
    }
    return JSONResponse(created, status_code=201)


def _filter(request: Request) -> AccountFilter:
    statuses = params.csv(request, "statuses")
    unknown = [status for status in statuses if status not in STATUSES]
    if unknown:
        raise InvalidRequest(
            f"statuses must be among {', '.join(STATUSES)}",
            key="validation_error",
            metadata={"errors": [{"field": "statuses", "message": "Invalid enum value"}]},
        )
    order_by = request.query_params.get("order_by") or "created_at"
    direction = request.query_params.get("order_direction") or "desc"
    if order_by not in ("created_at", "updated_at") or direction not in ("asc", "desc"):
        raise InvalidRequest(
            "order_by must be created_at or updated_at, order_direction asc or desc", key="validation_error"
        )
    return AccountFilter(
        toolkits=params.csv(request, "toolkit_slugs"),
        statuses=statuses,
        user_ids=params.csv(request, "user_ids"),
        auth_config_ids=params.csv(request, "auth_config_ids"),
        ids=params.csv(request, "connected_account_ids"),
        order_by=order_by,
        descending=direction == "desc",
    )


@describe(
    summary="List connected accounts",
    tag=_TAG,
    query=params.AccountListQuery,
    answers={200: Answer(renderers.Page[renderers.ConnectedAccount])},
)
@endpoint
async def list_accounts(request: Request, services: Services, principal: Principal) -> Response:
    where = _filter(request)
    offset, limit = params.paging(request)
    if request.query_params.get("account_type") == "SHARED":  # Keyhole accounts are all private
        return JSONResponse(params.page([], 0, offset, limit))
    found = await services.accounts.page(principal, where, offset=offset, limit=limit)
    items = [renderers.account(view) for view in found.items]
    return JSONResponse(params.page(items, found.total, offset, limit))


@describe(
    summary="Get a connected account",
    tag=_TAG,
    answers={200: Answer(renderers.ConnectedAccountDetail)},
)
@endpoint
async def get(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.accounts.get(principal, request.path_params["account_id"])
    return JSONResponse(renderers.account_detail(view))


@describe(
    summary="Change a connected account's alias or credential",
    description="Fields of state.val that are left out keep their value; null removes one.",
    tag=_TAG,
    body=schemas.AccountPatchBody,
    body_required=False,
    answers={200: Answer(renderers.AccountUpdated)},
    errors=(409, 422),
)
@endpoint
async def patch(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.AccountPatchBody, await _body(request, services))
    change = AccountChange()
    if "alias" in body.model_fields_set:
        change.alias = body.alias
        change.fields.add("alias")
    if body.connection is not None and body.connection.state is not None:
        change.auth_scheme = body.connection.state.auth_scheme
        change.val = body.connection.state.val
        change.fields.add("val")
    view = await services.accounts.update(principal, request.path_params["account_id"], change)
    updated: renderers.AccountUpdated = {"id": view.id, "status": view.status, "success": True}
    return JSONResponse(updated)


@describe(
    summary="Enable or disable a connected account",
    description="A disabled account refuses proxy calls.",
    tag=_TAG,
    body=schemas.StatusBody,
    answers={200: Answer(renderers.Success)},
)
@endpoint
async def update_status(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.StatusBody, await _body(request, services))
    await services.accounts.set_enabled(principal, request.path_params["account_id"], body.enabled)
    done: renderers.Success = {"success": True}
    return JSONResponse(done)


@describe(
    summary="Delete a connected account",
    tag=_TAG,
    query=params.DeleteQuery,
    answers={200: Answer(renderers.Success)},
)
@endpoint
async def delete(request: Request, services: Services, principal: Principal) -> Response:
    query_flag(request, "revoke_on_delete", False)  # validated; nothing to revoke upstream
    await services.accounts.delete(principal, request.path_params["account_id"])
    done: renderers.Success = {"success": True}
    return JSONResponse(done)


@describe(
    summary="Refresh a connected account",
    description="Answers the account's current status: Keyhole refreshes OAuth2 tokens itself when a "
    "call needs them.",
    tag=_TAG,
    body=schemas.RefreshBody,
    body_required=False,
    answers={200: Answer(renderers.AccountRefreshed)},
)
@endpoint
async def refresh(request: Request, services: Services, principal: Principal) -> Response:
    parse(schemas.RefreshBody, await _body(request, services))
    view = await services.accounts.get(principal, request.path_params["account_id"])
    refreshed: renderers.AccountRefreshed = {"id": view.id, "status": view.status, "redirect_url": None}
    return JSONResponse(refreshed)


@describe(
    summary="Start an OAuth2 sign-in for a new connected account",
    description="Only OAUTH2 auth configs of the api toolkit: the account is created INITIATED and "
    "redirect_url is where the user signs in. Other accounts are created with POST "
    "/connected_accounts and a state carrying the credential.",
    tag=_TAG,
    body=schemas.LinkBody,
    answers={201: Answer(renderers.AccountLink, description="Created")},
    errors=(422,),
)
@endpoint
async def link(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.LinkBody, await _body(request, services))
    await services.auth_configs.get(principal, body.auth_config_id)  # 404 first, like hosted
    if await services.oauth.starts_flow(principal, body.auth_config_id):
        started = await services.oauth.initiate_account(
            principal,
            auth_config_id=body.auth_config_id,
            user_id=body.user_id,
            alias=body.alias,
            val=body.connection_data or {},
            redirect_url=body.callback_url or _done_url(request, services),
            callback_url=public_base_url(request, services.settings) + CALLBACK_PATH,
        )
        linked: renderers.AccountLink = {
            "connected_account_id": started.connection_id,
            "link_token": started.token,
            "redirect_url": started.redirect_url,
            "expires_at": timestamp(started.expires_at),
        }
        return JSONResponse(linked, status_code=201)
    raise InvalidRequest(
        "Keyhole has no hosted connect page: create the account with POST /connected_accounts and "
        "an ACTIVE state carrying the credential",
        key="ConnectedAccount_LinkUnavailable",
    )
