"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path).

Every response gets an ``X-Request-Id`` (the caller's, when it is a sane token, else a new
one); responses of the Polytomic dialect echo ``X-Polytomic-Version``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("keyhole.access")

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9_.:-]{1,128}$")
_VERSION = re.compile(rb"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
DEFAULT_POLYTOMIC_VERSION = b"2025-09-18"
_BLOB_PATH = "/api/blobs/"  # the rest of such a path is a bearer capability


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id: bytes | None = None
        version: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _REQUEST_ID.match(value):
                request_id = value
            elif name == b"x-polytomic-version" and _VERSION.match(value):
                version = value
        if request_id is None:
            request_id = uuid.uuid4().hex.encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        path: str = scope["path"]
        polytomic = path.startswith("/api/") and not path.startswith("/api/v3")
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id))
                if polytomic:
                    headers.append((b"x-polytomic-version", version or DEFAULT_POLYTOMIC_VERSION))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        # never the query string (it may carry SQL or tokens), nor a download token
                        "path": _BLOB_PATH if path.startswith(_BLOB_PATH) else path,
                        "status": status,
                        "request_id": request_id.decode(),
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
