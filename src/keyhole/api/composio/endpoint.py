"""How a Composio handler runs: authenticate, call core, render domain errors as the envelope.

Every route passes through :func:`endpoint`, POST handlers included, so cross-cutting request
handling (idempotency keys, for one) has a single place to hook in.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.composio.errors import error_response
from keyhole.api.middleware import note_error, note_principal
from keyhole.api.openapi import ACCESS_ATTRIBUTE
from keyhole.errors import KeyholeError
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.principal import Principal

Handler = Callable[[Request, Services, Principal], Awaitable[Response]]


def request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        services: Services = request.app.state.services
        try:
            principal = await services.tenancy.authenticate(request.headers)
            note_principal(request.scope, principal)
            return await handler(request, services, principal)
        except KeyholeError as error:
            note_error(request.scope, error.key)
            return error_response(error, request_id(request))

    setattr(run, ACCESS_ATTRIBUTE, Access.RESOURCES)
    return run
