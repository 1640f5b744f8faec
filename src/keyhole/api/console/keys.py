"""Keys page of the console (administrators): the organization's keys by prefix, minting an
organization key or a user's key (its secret in the answer to that POST only, never again), and
revoking one after a confirmation. Revoking the key the console is signed in with, or replacing
the keys of the signed-in user, ends this session there and then."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyhole.api.console.endpoint import Viewer, console_page, redirect
from keyhole.api.console.security import clear_cookie, session_cookie_name
from keyhole.api.console.templating import render
from keyhole.errors import InvalidRequest, Unprocessable
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.keys import PREFIX_LENGTH
from keyhole.tenancy.missing import key_not_found
from keyhole.tenancy.schemas import UserView
from keyhole.tenancy.service import KeyView, MintedKey

ORGANIZATION_OWNER = "organization"
KIND_LABELS = {"user": "User key", "org": "Organization key", "partner": "Partner key"}
_DONE = {"revoked": "The key is revoked: it stops working at once."}


@console_page(Access.MANAGEMENT)
async def listing(request: Request, services: Services, viewer: Viewer) -> Response:
    prefix = request.query_params.get("prefix", "")
    try:
        keys = await _keys(services, viewer, prefix)
    except InvalidRequest as refused:
        # The refused value is not echoed back: it may be a whole key.
        keys = await _keys(services, viewer, "")
        return await _page(
            request, services, viewer, keys, "", message=refused.message, status_code=refused.status
        )
    return await _page(request, services, viewer, keys, prefix)


@console_page(Access.MANAGEMENT)
async def create(request: Request, services: Services, viewer: Viewer) -> Response:
    form = viewer.form
    principal = viewer.principal
    owner = form.get("owner", ORGANIZATION_OWNER)
    name = form.get("name")
    replace = form.get("replace") == "1"
    try:
        if owner == ORGANIZATION_OWNER:
            if replace:
                raise Unprocessable(
                    "only a user's key can replace other keys: an organization key is added beside them",
                    key="replace_needs_user",
                )
            minted = await services.tenancy.mint_organization_key(
                principal, principal.organization_id, name=name
            )
        else:
            minted = await services.tenancy.mint_user_key(
                principal, principal.organization_id, owner, force=replace, name=name
            )
    except Unprocessable as refused:
        keys = await _keys(services, viewer, "")
        return await _page(
            request, services, viewer, keys, "", message=refused.message, status_code=refused.status
        )
    session_ended = replace and owner == principal.user_id
    if session_ended:
        await _end_this_session(request, services)
    response = render(
        request,
        "keys/created.html",
        {
            "minted": minted,
            "owner": await _owner_email(services, viewer, minted),
            "kind_label": KIND_LABELS[minted.view.kind],
            "replaced": replace,
            "session_ended": session_ended,
        },
    )
    return _forget_cookie(request, services, response) if session_ended else response


@console_page(Access.MANAGEMENT)
async def confirm_revoke(request: Request, services: Services, viewer: Viewer) -> Response:
    key = await _key(services, viewer, request.path_params["key_id"])
    users = await services.users.list(viewer.principal, viewer.principal.organization_id)
    return render(
        request,
        "keys/revoke.html",
        {
            "key": key,
            "kind_label": KIND_LABELS[key.kind],
            "owner": _emails(users).get(key.user_id or ""),
            "this_session": key.id == viewer.principal.key_id,
        },
    )


@console_page(Access.MANAGEMENT)
async def revoke(request: Request, services: Services, viewer: Viewer) -> Response:
    principal = viewer.principal
    revoked = await services.tenancy.revoke_organization_key(
        principal, principal.organization_id, request.path_params["key_id"]
    )
    if revoked.id != principal.key_id:
        return redirect("/console/keys?done=revoked")
    await _end_this_session(request, services)
    response = render(request, "keys/session_ended.html", {"key": revoked})
    return _forget_cookie(request, services, response)


async def _keys(services: Services, viewer: Viewer, prefix: str) -> list[KeyView]:
    """Newest first."""
    principal = viewer.principal
    found = await services.tenancy.organization_keys(principal, principal.organization_id, prefix=prefix)
    return list(reversed(found))


async def _key(services: Services, viewer: Viewer, key_id: str) -> KeyView:
    for key in await _keys(services, viewer, ""):
        if key.id == key_id:
            return key
    raise key_not_found(key_id)


async def _page(
    request: Request,
    services: Services,
    viewer: Viewer,
    keys: list[KeyView],
    prefix: str,
    *,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    users = await services.users.list(viewer.principal, viewer.principal.organization_id)
    context: dict[str, Any] = {
        "keys": keys,
        "users": users,
        "emails": _emails(users),
        "kind_labels": KIND_LABELS,
        "prefix": prefix,
        "prefix_length": PREFIX_LENGTH,
        "session_key_id": viewer.principal.key_id,
        "message": message,
        "done": _DONE.get(request.query_params.get("done", "")),
    }
    return render(request, "keys/list.html", context, status_code=status_code)


def _emails(users: list[UserView]) -> dict[str, str]:
    return {user.id: user.email for user in users}


async def _owner_email(services: Services, viewer: Viewer, minted: MintedKey) -> str | None:
    if minted.view.user_id is None:
        return None
    user = await services.users.get(viewer.principal, viewer.principal.organization_id, minted.view.user_id)
    return user.email


async def _end_this_session(request: Request, services: Services) -> None:
    """This request's session is over: its row goes, and what is rendered next has no signed-in
    header (whose sign-out form would carry the token of a session that is gone)."""
    name = session_cookie_name(request, services.settings)
    await services.browser_sessions.sign_out(request.cookies.get(name))
    del request.state.console_context


def _forget_cookie(request: Request, services: Services, response: Response) -> Response:
    clear_cookie(response, request, services.settings, session_cookie_name(request, services.settings))
    return response


routes: list[BaseRoute] = [
    Route("/keys", listing, methods=["GET"]),
    Route("/keys", create, methods=["POST"]),
    Route("/keys/{key_id}/revoke", confirm_revoke, methods=["GET"]),
    Route("/keys/{key_id}/revoke", revoke, methods=["POST"]),
]
