"""Sign-in (an API key, once, for a session cookie) and sign-out.

The sign-in form is protected against login CSRF by a pre-session token: a random value in its own
short-lived cookie that the form must repeat. Attempts are rate-limited per client address, and a
refused key gets one plain message whatever the reason, so the form tells nothing about keys.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.console.endpoint import Viewer, console_page, error_page, read_form, redirect
from keyhole.api.console.security import (
    clear_cookie,
    from_this_origin,
    local_path,
    pre_session_cookie_name,
    session_cookie_name,
    set_cookie,
)
from keyhole.api.console.templating import render
from keyhole.errors import Forbidden, KeyholeError, RateLimited, Unauthenticated
from keyhole.services import Services

HOME = "/console/connections"
_FORM_LIFETIME = 3600
SIGN_IN_ATTEMPTS_PER_MINUTE = 20
_MAX_KEY = 512


async def sign_in_form(request: Request) -> Response:
    services: Services = request.app.state.services
    next_path = local_path(request.query_params.get("next"), HOME)
    try:
        await services.browser_sessions.resolve(
            request.cookies.get(session_cookie_name(request, services.settings))
        )
        return redirect(next_path)
    except Unauthenticated:
        pass
    return _form(request, services, next_path, message=None, status_code=200)


async def sign_in(request: Request) -> Response:
    services: Services = request.app.state.services
    settings = services.settings
    try:
        if not from_this_origin(request, settings):
            raise Forbidden("this form was sent from another site", key="cross_site_request")
        form = await read_form(request, settings.max_api_body_bytes)
        expected = request.cookies.get(pre_session_cookie_name(request, settings), "")
        presented = form.get("sign_in_token")
        if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
            raise Forbidden(
                "the sign-in form expired or was not sent from this page: reload it and try again",
                key="csrf_failed",
            )
        client = request.client.host if request.client else "unknown"
        decision = await services.limiter.hit(f"console-sign-in:{client}", SIGN_IN_ATTEMPTS_PER_MINUTE)
        if not decision.allowed:
            raise RateLimited(
                "too many sign-in attempts from this address: wait a minute and try again",
                retry_after=decision.retry_after,
            )
    except KeyholeError as error:
        return error_page(request, error)
    next_path = local_path(form.get("next"), HOME)
    key = form.get("api_key").strip()
    if not key or len(key) > _MAX_KEY:
        return _form(request, services, next_path, message="Enter an API key.", status_code=400)
    try:
        started = await services.browser_sessions.sign_in(key)
    except Unauthenticated:
        return _form(request, services, next_path, message="That key was not accepted.", status_code=401)
    except Forbidden as refused:
        return _form(request, services, next_path, message=refused.message, status_code=403)
    response = redirect(next_path)
    set_cookie(
        response,
        request,
        settings,
        session_cookie_name(request, settings),
        started.token,
        settings.console_session_hours * 3600,
    )
    clear_cookie(response, request, settings, pre_session_cookie_name(request, settings))
    return response


@console_page()
async def sign_out(request: Request, services: Services, viewer: Viewer) -> Response:
    viewer.form.only()
    return await end_session(request, services, lambda: redirect("/console/sign-in?signed_out=1"))


async def end_session(request: Request, services: Services, answer: Callable[[], Response]) -> Response:
    """End this request's session: its row leaves the store, then ``answer`` is made, and the
    cookie is cleared on it. A page ``answer`` renders has no signed-in header, whose sign-out form
    would carry the token of a session that is gone."""
    settings = services.settings
    name = session_cookie_name(request, settings)
    await services.browser_sessions.sign_out(request.cookies.get(name))
    del request.state.console_context
    response = answer()
    clear_cookie(response, request, settings, name)
    return response


def _form(
    request: Request, services: Services, next_path: str, *, message: str | None, status_code: int
) -> Response:
    settings = services.settings
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        {
            "sign_in_token": token,
            "next": next_path,
            "message": message,
            "signed_out": request.query_params.get("signed_out") == "1",
        },
        status_code=status_code,
    )
    set_cookie(response, request, settings, pre_session_cookie_name(request, settings), token, _FORM_LIFETIME)
    return response
