"""Keyhole's plain error envelope: ``{status, message, key, metadata}``, JSON always.

The routes outside any dialect (blob downloads, the OAuth callback) answer with it, and the
Polytomic dialect's envelope is this same shape.
"""

from __future__ import annotations

from keyhole.api.responses import JSONResponse
from keyhole.errors import KeyholeError


def error_headers(error: KeyholeError) -> dict[str, str]:
    """The headers of any dialect's error answer: the error's own, and ``Retry-After`` when it has one."""
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return headers


def error_response(error: KeyholeError) -> JSONResponse:
    return JSONResponse(
        {"status": error.status, "message": error.message, "key": error.key, "metadata": error.metadata},
        status_code=error.status,
        headers=error_headers(error),
    )
