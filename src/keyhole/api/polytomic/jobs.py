"""``GET /api/jobs/{type}/{id}`` (spec 2.4): snake_case job envelope."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from keyhole.api.links import public_base_url
from keyhole.api.openapi import Answer, describe
from keyhole.api.polytomic import schemas
from keyhole.api.polytomic.endpoint import endpoint
from keyhole.api.responses import JSONResponse
from keyhole.jobs import JOB_TYPES
from keyhole.proxy.async_calls import CONNECTION_PROXY, AsyncCallResult
from keyhole.services import Services
from keyhole.tenancy.principal import Principal
from keyhole.timestamps import timestamp


class ProxyJobResult(TypedDict):
    """A finished asynchronous proxy call: the upstream's answer, its body behind a short-lived URL."""

    status: int
    headers: dict[str, str]
    contentType: str
    contentLength: int
    latencyMs: int
    bodyDownloadUrl: str | None  # null once the stored body is gone
    bodyDownloadUrlExpiresAt: str | None
    truncated: bool
    proxyCallId: str


class Job(TypedDict):
    job_id: str
    type: str
    status: schemas.JobStatusValue
    error: str | None
    # A proxy job's result once it is done (null before); another job type's own result.
    result: ProxyJobResult | dict[str, Any] | None


class JobEnvelope(TypedDict):
    data: Job


def _proxy_result(result: AsyncCallResult) -> ProxyJobResult:
    return {
        "status": result.status,
        "headers": result.headers,
        "contentType": result.content_type,
        "contentLength": result.content_length,
        "latencyMs": result.latency_ms,
        "bodyDownloadUrl": result.body_download_url,
        "bodyDownloadUrlExpiresAt": timestamp(result.body_url_expires_at),
        "truncated": result.truncated,
        "proxyCallId": result.call_id,
    }


@describe(
    summary="Read a job",
    description="An asynchronous proxy call (type `connectionproxy`): once done, `result` holds the "
    "upstream's answer and a download URL for its body.",
    tag="Jobs",
    path={"job_type": {"type": "string", "enum": list(JOB_TYPES)}},
    answers={200: Answer(JobEnvelope)},
)
@endpoint
async def get_job(request: Request, services: Services, principal: Principal) -> Response:
    job_type = request.path_params["job_type"]
    view = await services.jobs.get(principal, job_type, request.path_params["job_id"])
    result: ProxyJobResult | dict[str, Any] | None = view.result
    if job_type == CONNECTION_PROXY:
        finished = await services.async_proxy.result(view, public_base_url(request, services.settings))
        result = None if finished is None else _proxy_result(finished)
    body: JobEnvelope = {
        "data": {
            "job_id": view.id,
            "type": view.type,
            "status": view.status.value,
            "error": view.error,
            "result": result,
        }
    }
    return JSONResponse(body)
