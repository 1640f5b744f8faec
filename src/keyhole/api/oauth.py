"""``GET /api/oauth/callback``: where providers send the user back. No API key: the single-use
``state`` is the credential. Success redirects (302) to the caller's URL; a refused callback is a
400 JSON error (the plain envelope, ``keyhole.api.errors``) and exchanges nothing.
``GET /api/oauth/done`` is the landing page when a caller gave no URL of its own."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from typing_extensions import TypedDict

from keyhole.api.errors import error_response
from keyhole.api.openapi import Answer, describe
from keyhole.api.responses import JSONResponse
from keyhole.errors import KeyholeError
from keyhole.services import Services

DONE_PATH = "/api/oauth/done"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class CallbackQuery(BaseModel):
    model_config = ConfigDict(extra="allow")

    state: str | None = Field(default=None, description="The single-use state of the flow")
    code: str | None = Field(default=None, description="The provider's authorization code")
    error: str | None = Field(default=None, description="The provider's refusal")


class DoneQuery(BaseModel):
    status: str | None = Field(default=None, description="success, or why the flow ended")
    connection_id: str | None = None


class Done(TypedDict):
    status: str
    connection_id: str
    message: str


@describe(
    summary="Where an OAuth2 provider sends the user back",
    description="No API key: the single-use state is the credential. Success redirects to the URL "
    "the flow was started with.",
    tag="OAuth",
    public=True,
    query=CallbackQuery,
    answers={302: Answer(description="Back to the caller's redirect URL")},
    errors=(400,),
)
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


@describe(
    summary="The landing page of a finished OAuth2 flow",
    tag="OAuth",
    public=True,
    query=DoneQuery,
    answers={200: Answer(Done)},
)
async def done(request: Request) -> Response:
    status = request.query_params.get("status", "")
    body: Done = {
        "status": status[:16],
        "connection_id": request.query_params.get("connection_id", "")[:64],
        "message": "you can close this window"
        if status == "success"
        else "the authorization did not complete",
    }
    return JSONResponse(body, headers=_NO_STORE)
