"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.responses import JSONResponse


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await request.app.state.services.database.ping()
    except Exception:  # any store failure means "not ready"; the reason goes to the log only
        request.app.state.logger.exception("readiness check failed")
        return JSONResponse({"status": "unavailable", "store": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "store": "reachable"})


async def metrics(request: Request) -> Response:
    try:
        await request.app.state.services.jobs.observe()
    except Exception:  # the store's figures are missing from this scrape; the rest still counts
        request.app.state.logger.warning("could not count jobs for /metrics", exc_info=True)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
