"""Keys page of the console (administrators): the organization's keys by prefix, minting a
user's key (its secret in the answer to that POST only, never again), and revoking one after a
confirmation. Revoking the key the console is signed in with, or replacing the keys of the
signed-in user, ends this session there and then.

As through the REST API, an administrator mints users' keys only: an organization key is the
operator's to mint (``keyhole keys create``), for it would outlive its minter's removal."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyhole.api.console.endpoint import Viewer, console_page, redirect
from keyhole.api.console.sign_in import end_session
from keyhole.api.console.templating import render
from keyhole.errors import InvalidRequest, Unprocessable
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.keys import PREFIX_LENGTH
from keyhole.tenancy.service import KeyView

KIND_LABELS = {"user": "User key", "org": "Organization key", "partner": "Partner key"}
_DONE = {"revoked": "The key is revoked: it stops working at once."}
# No owner, or the organization (an organization key): a plain refusal rather than a 404.
_NO_USER = {"", "organization"}
_USERS_ONLY = (
    "Choose the user the key is for: keys are minted here for users only. An organization key "
    "is minted by the operator on the server, with `keyhole keys create`."
)


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
    form = viewer.form.only("owner", "name", "replace")
    principal = viewer.principal
    user_id = form.get("owner")
    try:
        if user_id in _NO_USER:
            raise InvalidRequest(_USERS_ONLY, key="user_keys_only", metadata={"field": "owner"})
        minted = await services.tenancy.mint_user_key(
            principal,
            principal.organization_id,
            user_id,
            force=form.get("replace") == "1",
            name=form.get("name"),
        )
    except (InvalidRequest, Unprocessable) as refused:
        keys = await _keys(services, viewer, "")
        return await _page(
            request, services, viewer, keys, "", message=refused.message, status_code=refused.status
        )
    owner = await _email(services, viewer, minted.view.user_id)
    session_ended = principal.key_id in minted.replaced

    def page() -> Response:
        context = {"minted": minted, "owner": owner, "session_ended": session_ended}
        return render(request, "keys/created.html", context)

    return await end_session(request, services, page) if session_ended else page()


@console_page(Access.MANAGEMENT)
async def confirm_revoke(request: Request, services: Services, viewer: Viewer) -> Response:
    principal = viewer.principal
    key = await services.tenancy.organization_key(
        principal, principal.organization_id, request.path_params["key_id"]
    )
    return render(
        request,
        "keys/revoke.html",
        {
            "key": key,
            "kind_label": KIND_LABELS[key.kind],
            "owner": await _email(services, viewer, key.user_id),
            "this_session": key.id == principal.key_id,
        },
    )


@console_page(Access.MANAGEMENT)
async def revoke(request: Request, services: Services, viewer: Viewer) -> Response:
    viewer.form.only()
    principal = viewer.principal
    revoked = await services.tenancy.revoke_organization_key(
        principal, principal.organization_id, request.path_params["key_id"]
    )
    if revoked.id != principal.key_id:
        return redirect("/console/keys?done=revoked")
    return await end_session(
        request, services, lambda: render(request, "keys/session_ended.html", {"key": revoked})
    )


async def _keys(services: Services, viewer: Viewer, prefix: str) -> list[KeyView]:
    """Newest first."""
    principal = viewer.principal
    found = await services.tenancy.organization_keys(principal, principal.organization_id, prefix=prefix)
    return list(reversed(found))


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
        "emails": {user.id: user.email for user in users},
        "kind_labels": KIND_LABELS,
        "prefix": prefix,
        "prefix_length": PREFIX_LENGTH,
        "session_key_id": viewer.principal.key_id,
        "message": message,
        "done": _DONE.get(request.query_params.get("done", "")),
    }
    return render(request, "keys/list.html", context, status_code=status_code)


async def _email(services: Services, viewer: Viewer, user_id: str | None) -> str | None:
    """The email of a key's user (None for a key that is no user's)."""
    if user_id is None:
        return None
    user = await services.users.get(viewer.principal, viewer.principal.organization_id, user_id)
    return user.email


routes: list[BaseRoute] = [
    Route("/keys", listing, methods=["GET"]),
    Route("/keys", create, methods=["POST"]),
    Route("/keys/{key_id}/revoke", confirm_revoke, methods=["GET"]),
    Route("/keys/{key_id}/revoke", revoke, methods=["POST"]),
]
