"""``GET /api/jobs/{type}/{id}`` (spec 2.4): snake_case job envelope."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.links import public_base_url
from keyhole.api.polytomic.endpoint import endpoint
from keyhole.api.responses import JSONResponse
from keyhole.proxy.async_calls import CONNECTION_PROXY, AsyncCallResult
from keyhole.services import Services
from keyhole.tenancy.principal import Principal
from keyhole.timestamps import timestamp


def _proxy_result(result: AsyncCallResult) -> dict[str, Any]:
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


@endpoint
async def get_job(request: Request, services: Services, principal: Principal) -> Response:
    job_type = request.path_params["job_type"]
    view = await services.jobs.get(principal, job_type, request.path_params["job_id"])
    result: Any = view.result
    if job_type == CONNECTION_PROXY:
        finished = await services.async_proxy.result(view, public_base_url(request, services.settings))
        result = None if finished is None else _proxy_result(finished)
    return JSONResponse(
        {
            "data": {
                "job_id": view.id,
                "type": view.type,
                "status": view.status.value,
                "error": view.error,
                "result": result,
            }
        }
    )
