"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from keyhole.api.openapi import Answer, describe
from keyhole.api.responses import JSONResponse


class Health(TypedDict):
    status: str


class Readiness(TypedDict):
    status: str
    store: str


@describe(
    summary="Liveness: the process answers", tag="Operations", public=True, answers={200: Answer(Health)}
)
async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@describe(
    summary="Readiness: the store is reachable",
    tag="Operations",
    public=True,
    answers={200: Answer(Readiness), 503: Answer(Readiness, description="The store is unreachable")},
)
async def readyz(request: Request) -> Response:
    try:
        await request.app.state.services.database.ping()
    except Exception:  # any store failure means "not ready"; the reason goes to the log only
        request.app.state.logger.exception("readiness check failed")
        return JSONResponse({"status": "unavailable", "store": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "store": "reachable"})


@describe(
    summary="Prometheus metrics",
    tag="Operations",
    public=True,
    answers={200: Answer(description="The Prometheus text format", media_type="text/plain")},
)
async def metrics(request: Request) -> Response:
    try:
        await request.app.state.services.jobs.observe()
    except Exception:  # the store's figures are missing from this scrape; the rest still counts
        request.app.state.logger.warning("could not count jobs for /metrics", exc_info=True)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
