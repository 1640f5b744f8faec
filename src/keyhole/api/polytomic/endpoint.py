"""How a Polytomic handler runs: authenticate, honour Idempotency-Key on POST, call core, render
domain errors as the envelope."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from keyhole.api.idempotency import idempotent
from keyhole.api.middleware import note_error, note_principal
from keyhole.api.openapi import ACCESS_ATTRIBUTE
from keyhole.api.polytomic.errors import error_response
from keyhole.errors import KeyholeError
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.principal import Principal

Handler = Callable[[Request, Services, Principal], Awaitable[Response]]


def endpoint_for(access: Access) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A Polytomic handler reachable by the credential kinds ``access`` admits."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            services: Services = request.app.state.services
            try:
                principal = await services.tenancy.authenticate(request.headers, access)
                note_principal(request.scope, principal)
                if request.method == "POST" and IDEMPOTENCY_HEADER in request.headers:

                    async def call(request: Request) -> Response:
                        try:
                            return await handler(request, services, principal)
                        except KeyholeError as error:
                            note_error(request.scope, error.key)
                            return error_response(error)

                    return await idempotent(request, services.idempotency, principal, call)
                return await handler(request, services, principal)
            except KeyholeError as error:
                note_error(request.scope, error.key)
                return error_response(error)

        setattr(run, ACCESS_ATTRIBUTE, access)
        return run

    return wrap


endpoint = endpoint_for(Access.RESOURCES)
"""A handler on the organization's resources (connections, proxy, queries, jobs)."""
