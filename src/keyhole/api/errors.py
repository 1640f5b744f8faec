"""Keyhole's plain error envelope: ``{status, message, key, metadata}``, JSON always.

The routes outside any dialect (blob downloads, the OAuth callback) answer with it, and the
Polytomic dialect's envelope is this same shape.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from keyhole.api.responses import JSONResponse
from keyhole.errors import KeyholeError


class ErrorEnvelope(TypedDict):
    status: int
    message: str
    key: str
    metadata: dict[str, Any]


def error_headers(error: KeyholeError) -> dict[str, str]:
    """The headers of any dialect's error answer: the error's own, and ``Retry-After`` when it has one."""
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return headers


def error_response(error: KeyholeError) -> JSONResponse:
    envelope: ErrorEnvelope = {
        "status": error.status,
        "message": error.message,
        "key": error.key,
        "metadata": error.metadata,
    }
    return JSONResponse(
        envelope,
        status_code=error.status,
        headers=error_headers(error),
    )
