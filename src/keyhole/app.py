"""create_app(): wires the services, mounts the dialect routers, and owns the lifespan.

The synchronous Polytomic proxy route is served by ``FastProxy`` in front of the framework."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keyhole.api import blobs, health, oauth
from keyhole.api.composio.errors import error_response as composio_error
from keyhole.api.composio.routes import routes as composio_routes
from keyhole.api.middleware import RequestContext, note_error
from keyhole.api.polytomic.errors import error_response as polytomic_error
from keyhole.api.polytomic.fast_proxy import FastProxy
from keyhole.api.polytomic.routes import routes as polytomic_routes
from keyhole.errors import KeyholeError, MethodNotAllowed, NotFound, internal_error
from keyhole.services import Services
from keyhole.settings import Settings
from keyhole.store.migrate import upgrade

logger = logging.getLogger("keyhole")


def _render(request: Request, error: KeyholeError) -> Response:
    note_error(request.scope, error.key)
    if request.url.path.startswith("/api/v3"):
        return composio_error(error, request.scope.get("state", {}).get("request_id"))
    return polytomic_error(error)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return _render(request, MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
    return _render(request, NotFound(f"no route {request.method} {request.url.path}"))


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _render(request, internal_error(request.scope.get("state", {}).get("request_id")))


def create_app(settings: Settings | None = None) -> FastProxy:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = Services.build(settings)
        await upgrade(settings.resolved_database_url)
        await services.prepare()
        services.start("serve")
        _freeze_heap()
        app.state.services = services
        app.state.logger = logger
        try:
            yield
        finally:
            await services.close()

    routes = [
        *polytomic_routes,
        *composio_routes,
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/api/blobs/{token}", blobs.download, methods=["GET"]),
        Route("/api/oauth/callback", oauth.callback, methods=["GET"]),
        Route(oauth.DONE_PATH, oauth.done, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception, Exception: _unexpected},
    )
    app.add_middleware(RequestContext, access_log=settings.access_log)
    return FastProxy(app, access_log=settings.access_log)


def _freeze_heap() -> None:
    """Move everything alive after start-up out of the cyclic collector's reach.

    Modules, the ORM, settings and pools never die; without this every full collection walks
    them again. Measured on the proxy benchmark: p99 at c=32 from ~80 ms to ~16 ms and about 5 %
    less CPU per call."""
    gc.collect()
    gc.freeze()
