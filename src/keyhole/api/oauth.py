"""``GET /api/oauth/callback``: where providers send the user back. No API key: the single-use
``state`` is the credential. Success redirects (302) to the caller's URL; a refused callback is a
400 JSON error (the plain envelope, ``keyhole.api.errors``) and exchanges nothing.
``GET /api/oauth/done`` is the landing page when a caller gave no URL of its own."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from keyhole.api.errors import error_response
from keyhole.api.responses import JSONResponse
from keyhole.errors import KeyholeError
from keyhole.services import Services

DONE_PATH = "/api/oauth/done"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def callback(request: Request) -> Response:
    services: Services = request.app.state.services
    params = request.query_params
    try:
        done = await services.oauth.flows.callback(
            params.get("state"), params.get("code"), params.get("error")
        )
    except KeyholeError as error:
        response = error_response(error)
        response.headers.update(_NO_STORE)
        return response
    return RedirectResponse(done.redirect_url, status_code=302, headers=_NO_STORE)


async def done(request: Request) -> Response:
    status = request.query_params.get("status", "")
    return JSONResponse(
        {
            "status": status[:16],
            "connection_id": request.query_params.get("connection_id", "")[:64],
            "message": "you can close this window"
            if status == "success"
            else "the authorization did not complete",
        },
        headers=_NO_STORE,
    )
