"""How a console page runs: the session from its cookie, the origin and CSRF checks of a
state-changing request, the access gate, then the handler; domain errors become an error page
in plain words with the error's status, and every answer says how long the server took."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from keyhole.api.console.security import (
    SAFE_METHODS,
    from_this_origin,
    secured,
    session_cookie_name,
)
from keyhole.api.console.templating import render
from keyhole.api.middleware import note_error, note_principal
from keyhole.api.requests import read_body
from keyhole.errors import Forbidden, InvalidRequest, KeyholeError, Unauthenticated, UnsupportedMediaType
from keyhole.services import Services
from keyhole.tenancy.access import Access, is_administrator, require
from keyhole.tenancy.browser_sessions import ConsoleSession, csrf_matches
from keyhole.tenancy.principal import Principal

SIGN_IN_PATH = "/console/sign-in"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_MAX_FIELDS = 1000
# A '%' that starts no escape: browsers send '%25'; parse_qsl would keep it as it is.
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class Form:
    """A submitted ``application/x-www-form-urlencoded`` form, every value a string."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.pairs:
            if key == name:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.pairs)

    def only(self, *names: str) -> Form:
        """This form, refused whole (400) when it holds a field the page does not have, or one of
        its fields twice: a page reads exactly what it generated."""
        seen: set[str] = set()
        for key, _ in self.pairs:
            if key == CSRF_FIELD:
                continue
            if key not in names:
                raise InvalidRequest(
                    f"the form holds a field this page does not have ({key[:64]!r})", key="unexpected_field"
                )
            if key in seen:
                raise InvalidRequest(f"the form holds the field {key[:64]!r} twice", key="repeated_field")
            seen.add(key)
        return self


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at the page, through which session, and what they submitted."""

    principal: Principal
    session: ConsoleSession
    form: Form

    @property
    def is_admin(self) -> bool:
        return is_administrator(self.principal)


Handler = Callable[[Request, Services, Viewer], Awaitable[Response]]


async def read_form(request: Request, limit: int) -> Form:
    """The form of a POST: urlencoded only (415 otherwise), at most ``limit`` bytes (413)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("the console accepts forms sent as application/x-www-form-urlencoded")
    body = await read_body(request, limit)
    try:
        text = body.decode()
        if _BROKEN_ESCAPE.search(text):
            raise ValueError("a '%' that starts no escape")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the form is not valid UTF-8 form data", key="invalid_form") from None
    return Form(pairs)


def console_page(
    access: Access = Access.RESOURCES,
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A console page reachable by a signed-in key that ``access`` admits."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            started = time.perf_counter()
            response = await _run(request, handler, access)
            elapsed_ms = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
            return response

        return run

    return wrap


async def _run(request: Request, handler: Handler, access: Access) -> Response:
    services: Services = request.app.state.services
    settings = services.settings
    try:
        cookie = request.cookies.get(session_cookie_name(request, settings))
        session = await services.browser_sessions.resolve(cookie)
    except Unauthenticated as error:
        if request.method in SAFE_METHODS:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return secured(RedirectResponse(f"{SIGN_IN_PATH}?next={quote(target, safe='')}", status_code=303))
        return error_page(request, error)
    principal = session.principal
    note_principal(request.scope, principal)
    form = Form([])
    try:
        if request.method not in SAFE_METHODS:
            if not from_this_origin(request, settings):
                raise Forbidden("this form was sent from another site", key="cross_site_request")
            form = await read_form(request, settings.max_api_body_bytes)
            presented = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
            if not csrf_matches(session, presented):
                raise Forbidden(
                    "the form's security token is missing or stale: reload the page and try again",
                    key="csrf_failed",
                )
        _refuse_control_characters(request)
        viewer = Viewer(principal, session, form)
        request.state.console_context = {
            "viewer": viewer,
            "csrf_token": session.csrf_token,
            "is_admin": viewer.is_admin,
        }
        require(principal, access)
        return await handler(request, services, viewer)
    except KeyholeError as error:
        return error_page(request, error)


def error_page(request: Request, error: KeyholeError) -> Response:
    """The error in plain words, with the error's status (never a 500 for a domain error)."""
    note_error(request.scope, error.key)
    response = render(
        request,
        "error.html",
        {"status": error.status, "message": error.message, "key": error.key},
        status_code=error.status,
    )
    for name, value in error.headers.items():
        response.headers[name] = value
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def redirect(path: str) -> Response:
    """After a form: see the page it changed (POST → 303 → GET)."""
    return secured(RedirectResponse(path, status_code=303))


def _refuse_control_characters(request: Request) -> None:
    """No page reads a query parameter with a control character (a NUL that PostgreSQL text cannot
    hold, a line break in a filter): refused whole, before any handler sees it."""
    for name, value in request.query_params.multi_items():
        if any(ord(character) < 0x20 or ord(character) == 0x7F for character in name + value):
            raise InvalidRequest(
                f"the query parameter {name[:64]!r} holds a control character", key="invalid_query_parameter"
            )
