"""Connections pages of the console: the list (a page at a time, filtered in the URL, with each
shown connection's last call), a connection's page (its metadata, secrets only as "set"), and
what can be done to it there: test, enable or disable its proxy, delete after typing its name,
and authorize an OAuth2 connection through the provider (the authorization-code flow, which comes
back to the connection's page). Creating and editing are in ``connection_forms``."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from keyhole.api.console import connection_forms, schema_form
from keyhole.api.console.endpoint import Viewer, console_page, error_page, redirect
from keyhole.api.console.security import from_this_origin, secured
from keyhole.api.console.templating import render
from keyhole.api.links import public_base_url
from keyhole.connections.authorization import authorizes_through_provider
from keyhole.connections.schemas import ConnectionTest, ConnectionView
from keyhole.connections.service import connection_not_found
from keyhole.errors import Forbidden, InvalidRequest, Unprocessable
from keyhole.oauth.flows import CALLBACK_PATH
from keyhole.oauth.service import ConnectRequest
from keyhole.services import Services

PAGE_SIZE = 50
RECENT_CALLS = 10
_MAX_FILTER = 200
_MAX_PAGE = 1_000_000
_REASON = re.compile(r"[a-z0-9_]{1,64}")
# ASCII digits only: str.isdigit() also takes '²', which int() refuses.
_PAGE = re.compile(r"[0-9]{1,7}")
_DONE = {
    "created": "Connection created.",
    "saved": "Changes saved.",
    "proxy_enabled": "The proxy is enabled: calls through this connection are served.",
    "proxy_disabled": "The proxy is disabled: calls through this connection are refused.",
}


@console_page()
async def listing(request: Request, services: Services, viewer: Viewer) -> Response:
    params = request.query_params
    type_id = params.get("type", "")
    name_part = params.get("q", "").strip()
    if len(type_id) > _MAX_FILTER or len(name_part) > _MAX_FILTER:
        raise InvalidRequest(f"a filter holds at most {_MAX_FILTER} characters", key="validation_error")
    page_number = _page_number(params.get("page"))
    page = await services.connections.page(
        viewer.principal,
        type_id=type_id or None,
        name_part=name_part or None,
        offset=(page_number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    last_calls = await services.audit.last_calls(
        viewer.principal.organization_id, [connection.id for connection in page.connections]
    )
    filters = {key: value for key, value in (("type", type_id), ("q", name_part)) if value}
    last_page = max(1, -(-page.total // PAGE_SIZE))
    return render(
        request,
        "connections/list.html",
        {
            "connections": page.connections,
            "last_calls": last_calls,
            "total": page.total,
            "first_shown": (page_number - 1) * PAGE_SIZE + 1,
            "last_shown": (page_number - 1) * PAGE_SIZE + len(page.connections),
            "types": services.catalog.all(),
            "type_id": type_id,
            "name_part": name_part,
            "filtered": bool(filters),
            "deleted": params.get("done") == "deleted",
            "previous_href": _list_href(filters, page_number - 1) if page_number > 1 else None,
            "next_href": _list_href(filters, page_number + 1) if page_number < last_page else None,
        },
    )


def _page_number(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    if not _PAGE.fullmatch(raw) or not 1 <= int(raw) <= _MAX_PAGE:
        raise InvalidRequest("page must be a whole number from 1", key="validation_error")
    return int(raw)


def _list_href(filters: dict[str, str], page_number: int) -> str:
    query = {**filters, **({"page": str(page_number)} if page_number > 1 else {})}
    return "/console/connections" + (f"?{urlencode(query)}" if query else "")


@console_page()
async def detail(request: Request, services: Services, viewer: Viewer) -> Response:
    view = await services.connections.get(viewer.principal, request.path_params["connection_id"])
    params = request.query_params
    notice = _DONE.get(params.get("done", ""))
    authorization = params.get("authorization")
    if authorization == "success":
        notice = "Authorized: the provider granted access, and Keyhole holds the tokens."
    return await _detail_page(
        request,
        services,
        viewer,
        view,
        notice=notice,
        problem=_authorization_problem(params.get("reason")) if authorization == "failed" else None,
    )


def _authorization_problem(reason: str | None) -> str:
    shown = f" ({reason})" if reason and _REASON.fullmatch(reason) else ""
    return f"The authorization did not complete{shown}: start it again with Connect."


async def _detail_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    view: ConnectionView,
    *,
    notice: str | None = None,
    problem: str | None = None,
) -> Response:
    calls = await services.audit.calls(
        viewer.principal.organization_id, view.id, limit=RECENT_CALLS, cursor=None
    )
    form = schema_form.build(view.type)
    return render(
        request,
        "connections/detail.html",
        {
            "view": view,
            "lines": schema_form.summary(form, view.configuration),
            "calls": calls.calls,
            "authorizes": authorizes_through_provider(view),
            "notice": notice,
            "problem": problem,
        },
    )


@console_page()
async def test(request: Request, services: Services, viewer: Viewer) -> Response:
    """Reach the target with the stored configuration. Nothing is stored, so the result is the
    answer to this POST (sending it again tests again)."""
    viewer.form.only()
    view = await services.connections.get(viewer.principal, request.path_params["connection_id"])
    try:
        await services.connections.test(
            viewer.principal, ConnectionTest(type_id=view.type.id, configuration={}, connection_id=view.id)
        )
    except (InvalidRequest, Unprocessable) as failed:
        return await _detail_page(
            request, services, viewer, view, problem=f"The test failed: {failed.message}"
        )
    return await _detail_page(request, services, viewer, view, notice="The test passed: the target answered.")


@console_page()
async def set_proxy(request: Request, services: Services, viewer: Viewer) -> Response:
    viewer.form.only("enabled")
    enabled = viewer.form.get("enabled")
    if enabled not in ("true", "false"):
        raise InvalidRequest("enabled must be true or false", key="validation_error")
    view = await services.connections.set_proxy_enabled(
        viewer.principal, request.path_params["connection_id"], enabled == "true"
    )
    return redirect(
        f"/console/connections/{view.id}?done=proxy_{'enabled' if view.proxy_enabled else 'disabled'}"
    )


@console_page()
async def delete_form(request: Request, services: Services, viewer: Viewer) -> Response:
    view = await services.connections.get(viewer.principal, request.path_params["connection_id"])
    return render(request, "connections/delete.html", {"view": view, "problem": None})


@console_page()
async def delete(request: Request, services: Services, viewer: Viewer) -> Response:
    viewer.form.only("confirm_name")
    view = await services.connections.get(viewer.principal, request.path_params["connection_id"])
    if viewer.form.get("confirm_name") != view.name:
        problem = "The name you typed is not the connection's name: nothing was deleted."
        return render(request, "connections/delete.html", {"view": view, "problem": problem}, status_code=400)
    await services.connections.delete(viewer.principal, view.id)
    return redirect("/console/connections?done=deleted")


@console_page()
async def connect(request: Request, services: Services, viewer: Viewer) -> Response:
    """Start the authorization-code flow and send the browser to the provider. A link, not a form:
    the console's policy lets forms post only to the console, and a navigation is no form."""
    if not from_this_origin(request, services.settings):
        raise Forbidden("start the authorization from the connection's page", key="cross_site_request")
    view = await services.connections.get(viewer.principal, request.path_params["connection_id"])
    base = public_base_url(request, services.settings)
    started = await services.oauth.connect(
        viewer.principal,
        ConnectRequest(
            name=view.name,
            redirect_url=f"{base}/console/connections/{view.id}/authorized",
            callback_url=base + CALLBACK_PATH,
            connection_id=view.id,
        ),
    )
    return secured(RedirectResponse(started.redirect_url, status_code=303))


async def authorized(request: Request) -> Response:
    """Where the provider's redirect ends. It arrives from another site, so the browser sends no
    session cookie (SameSite=Strict); this page, which shows nothing of the connection, moves on
    to the connection's page from here, a navigation that carries the session."""
    try:
        connection_id = str(uuid.UUID(request.path_params["connection_id"]))
    except ValueError:
        return error_page(request, connection_not_found(request.path_params["connection_id"]))
    outcome = {"authorization": "success"}
    if request.query_params.get("status") != "success":
        outcome = {"authorization": "failed", "reason": request.query_params.get("error", "")[:64]}
    return render(
        request,
        "connections/authorized.html",
        {"target": f"/console/connections/{connection_id}?{urlencode(outcome)}"},
    )


routes: list[BaseRoute] = [
    Route("/connections", listing, methods=["GET"]),
    Route("/connections/new", connection_forms.pick_type, methods=["GET"]),
    Route("/connections/new/{type_id}", connection_forms.new_form, methods=["GET"]),
    Route("/connections/new/{type_id}", connection_forms.create, methods=["POST"]),
    Route("/connections/{connection_id}", detail, methods=["GET"]),
    Route("/connections/{connection_id}/edit", connection_forms.edit_form, methods=["GET"]),
    Route("/connections/{connection_id}/edit", connection_forms.update, methods=["POST"]),
    Route("/connections/{connection_id}/test", test, methods=["POST"]),
    Route("/connections/{connection_id}/proxy", set_proxy, methods=["POST"]),
    Route("/connections/{connection_id}/delete", delete_form, methods=["GET"]),
    Route("/connections/{connection_id}/delete", delete, methods=["POST"]),
    Route("/connections/{connection_id}/connect", connect, methods=["GET"]),
    Route("/connections/{connection_id}/authorized", authorized, methods=["GET"]),
]
