"""The Polytomic error envelope: ``{status, message, key, metadata}``, JSON always."""

from __future__ import annotations

from keyhole.api.responses import JSONResponse
from keyhole.errors import KeyholeError


def error_response(error: KeyholeError) -> JSONResponse:
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(
        {"status": error.status, "message": error.message, "key": error.key, "metadata": error.metadata},
        status_code=error.status,
        headers=headers,
    )
