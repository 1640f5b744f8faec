"""The Polytomic error envelope: ``{status, message, key, metadata}``, JSON always."""

from __future__ import annotations

from keyhole.api.responses import JSONResponse
from keyhole.errors import KeyholeError


def error_response(error: KeyholeError) -> JSONResponse:
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    headers.update(error.metadata.get("_headers", {}))
    metadata = {key: value for key, value in error.metadata.items() if not key.startswith("_")}
    return JSONResponse(
        {"status": error.status, "message": error.message, "key": error.key, "metadata": metadata},
        status_code=error.status,
        headers=headers,
    )
