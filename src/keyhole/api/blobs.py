"""``GET /api/blobs/{token}``: download a blob with a signed, expiring URL (no API key).

The token is the capability: 403 when it was altered or not issued here, 410 once it has
expired or its blob is gone. The body streams from the store in constant memory, served as an
attachment that browsers will neither sniff nor render.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from keyhole.api.errors import error_response
from keyhole.api.openapi import Answer, describe
from keyhole.errors import KeyholeError
from keyhole.services import Services

_SAFE_HEADERS = {
    "Cache-Control": "private, no-store",
    "Content-Disposition": "attachment",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Referrer-Policy": "no-referrer",
}


@describe(
    summary="Download a stored body with its signed, expiring URL",
    description="No API key: the token is the capability. 403 when it was altered or not issued "
    "here, 410 once it has expired or its body is gone.",
    tag="Downloads",
    public=True,
    answers={
        200: Answer(description="The body, as an attachment, with its stored content type", media_type="*/*")
    },
    errors=(403, 410),
)
async def download(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        found = await services.blobs.open_download(request.path_params["token"])
    except KeyholeError as error:
        return error_response(error)
    headers = {
        **_SAFE_HEADERS,
        "Content-Type": found.blob.content_type,  # as stored: no charset added
        "Content-Length": str(found.blob.size),
    }
    return StreamingResponse(found.chunks, headers=headers)
