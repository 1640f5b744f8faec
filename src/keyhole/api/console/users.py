"""Users page of the console (administrators): the organization's users with their roles and
live keys, adding one, changing a role, removing one after a confirmation. A user's key is minted
on the keys page's form (``/console/keys``), which this page's buttons post to."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyhole.api.console.endpoint import Viewer, console_page, redirect
from keyhole.api.console.sign_in import HOME
from keyhole.api.console.templating import render
from keyhole.errors import Conflict, Unprocessable
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.principal import ROLES
from keyhole.tenancy.schemas import UserRequest
from keyhole.tenancy.users import DEFAULT_ROLE

_DONE = {
    "added": "The user is added. Mint a key for them to sign in with.",
    "role": "The role is changed: it applies to the user's keys at once.",
    "removed": "The user is removed, and their keys stopped working.",
}


@console_page(Access.MANAGEMENT)
async def listing(request: Request, services: Services, viewer: Viewer) -> Response:
    return await _page(request, services, viewer, email="", role=DEFAULT_ROLE)


@console_page(Access.MANAGEMENT)
async def add(request: Request, services: Services, viewer: Viewer) -> Response:
    form = viewer.form.only("email", "role")
    email = form.get("email")
    role = form.get("role", DEFAULT_ROLE)
    try:
        await services.users.create(
            viewer.principal, viewer.principal.organization_id, UserRequest(email, role)
        )
    except (Unprocessable, Conflict) as refused:
        return await _page(
            request,
            services,
            viewer,
            email=email[:320],
            role=role,
            message=refused.message,
            status_code=refused.status,
        )
    return redirect("/console/users?done=added")


@console_page(Access.MANAGEMENT)
async def change_role(request: Request, services: Services, viewer: Viewer) -> Response:
    role = viewer.form.only("role").get("role")
    principal = viewer.principal
    user_id = request.path_params["user_id"]
    changed = await services.users.update(
        principal, principal.organization_id, user_id, UserRequest(None, role)
    )
    if changed.id == principal.user_id and changed.role != "admin":
        # This session's own user is no administrator any more: this page is closed to it now.
        return redirect(HOME)
    return redirect("/console/users?done=role")


@console_page(Access.MANAGEMENT)
async def confirm_remove(request: Request, services: Services, viewer: Viewer) -> Response:
    principal = viewer.principal
    user = await services.users.get(principal, principal.organization_id, request.path_params["user_id"])
    live_keys = await services.tenancy.live_key_counts(principal, principal.organization_id)
    return render(
        request,
        "users/remove.html",
        {"user": user, "live_keys": live_keys.get(user.id, 0), "is_self": user.id == principal.user_id},
    )


@console_page(Access.MANAGEMENT)
async def remove(request: Request, services: Services, viewer: Viewer) -> Response:
    viewer.form.only()
    principal = viewer.principal
    await services.users.delete(principal, principal.organization_id, request.path_params["user_id"])
    return redirect("/console/users?done=removed")


async def _page(
    request: Request,
    services: Services,
    viewer: Viewer,
    *,
    email: str,
    role: str,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    principal = viewer.principal
    users = await services.users.list(principal, principal.organization_id)
    return render(
        request,
        "users/list.html",
        {
            "users": users,
            "live_keys": await services.tenancy.live_key_counts(principal, principal.organization_id),
            "roles": ROLES,
            "self_id": principal.user_id,
            "email": email,
            "role": role,
            "message": message,
            "done": _DONE.get(request.query_params.get("done", "")),
        },
        status_code=status_code,
    )


routes: list[BaseRoute] = [
    Route("/users", listing, methods=["GET"]),
    Route("/users", add, methods=["POST"]),
    Route("/users/{user_id}/role", change_role, methods=["POST"]),
    Route("/users/{user_id}/remove", confirm_remove, methods=["GET"]),
    Route("/users/{user_id}/remove", remove, methods=["POST"]),
]
