"""Polytomic connect flow (spec section 2.8): start an OAuth2 authorization, read the session.

Only wire translation lives here; the flow is ``keyhole.oauth``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from keyhole.api.links import public_base_url
from keyhole.api.openapi import Answer, describe
from keyhole.api.polytomic.endpoint import endpoint
from keyhole.api.requests import parse, read_json
from keyhole.api.responses import JSONResponse
from keyhole.errors import Forbidden, InvalidRequest
from keyhole.oauth.flows import CALLBACK_PATH
from keyhole.oauth.service import ConnectRequest
from keyhole.services import Services
from keyhole.tenancy.principal import Principal
from keyhole.timestamps import timestamp

_PRESENT: JsonDict = {"not": {"type": "null"}}


class ConnectBody(BaseModel):
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        # The connection to authorize, or what to create: the handler refuses a body with neither.
        json_schema_extra={
            "anyOf": [
                {"required": ["connection"], "properties": {"connection": _PRESENT}},
                {
                    "required": ["type", "configuration"],
                    "properties": {"type": _PRESENT, "configuration": _PRESENT},
                },
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    redirect_url: str = Field(min_length=1, max_length=2048)
    connection: str | None = Field(default=None, max_length=64)
    dark: bool | None = None
    organization_id: str | None = None
    ttl: int | None = None
    type: str | None = Field(default=None, max_length=64)
    use_organization_name: bool | None = None
    whitelist: list[str] | None = None
    configuration: dict[str, Any] | None = None  # Keyhole extension: create the connection too


class ConnectSessionQuery(BaseModel):
    token: str = Field(min_length=1, description="The connect token the flow was started with")


class ConnectStart(TypedDict):
    redirect_url: str  # the provider's authorization URL, where to send the user
    token: str  # the connect token, shown once


class ConnectStartEnvelope(TypedDict):
    data: ConnectStart


class ConnectSession(TypedDict):
    id: str
    name: str
    type: str
    whitelist: list[str]
    connection_id: str
    redirect_url: str
    logo: str
    organization_name: str
    dark: bool
    expires_at: str


class ConnectSessionEnvelope(TypedDict):
    data: ConnectSession


@describe(
    summary="Start authorizing a connection (OAuth2)",
    description="Authorizes the connection named by `connection`, or creates one from `type` and "
    "`configuration` (an oauth2 auth) first. Send the user to the answer's `redirect_url`; the "
    "provider sends them back to Keyhole, which then redirects to the body's `redirect_url`.",
    tag="Connections",
    body=ConnectBody,
    body_examples={
        "existing": {
            "name": "Calendar",
            "connection": "0b7c2f0e-4a51-4f3e-9d43-2f1d6f0c9a11",
            "redirect_url": "https://app.example.com/connected",
        }
    },
    answers={200: Answer(ConnectStartEnvelope)},
    errors=(409, 413, 422),
)
@endpoint
async def start(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(ConnectBody, await read_json(request, services.settings.max_api_body_bytes))
    if body.organization_id is not None and body.organization_id != principal.organization_id:
        raise Forbidden("organization_id names another organization", key="organization_mismatch")
    started = await services.oauth.connect(
        principal,
        ConnectRequest(
            name=body.name,
            redirect_url=body.redirect_url,
            callback_url=public_base_url(request, services.settings) + CALLBACK_PATH,
            connection_id=body.connection,
            type_id=body.type,
            configuration=body.configuration,
            ttl_seconds=body.ttl,
            dark=bool(body.dark),
        ),
    )
    answer: ConnectStartEnvelope = {"data": {"redirect_url": started.redirect_url, "token": started.token}}
    return JSONResponse(answer)


@describe(
    summary="Read a connect session",
    tag="Connections",
    query=ConnectSessionQuery,
    answers={200: Answer(ConnectSessionEnvelope)},
)
@endpoint
async def session(request: Request, services: Services, principal: Principal) -> Response:
    token = request.query_params.get("token")
    if not token:
        raise InvalidRequest("the token query parameter is required", key="validation_error")
    found = await services.oauth.flows.session(principal, token)
    answer: ConnectSessionEnvelope = {
        "data": {
            "id": found.id,
            "name": found.name,
            "type": found.type_id,
            "whitelist": [found.type_id],
            "connection_id": found.connection_id,
            "redirect_url": found.redirect_url,
            "logo": "",
            "organization_name": "",
            "dark": found.dark,
            "expires_at": timestamp(found.expires_at),
        }
    }
    return JSONResponse(answer)
