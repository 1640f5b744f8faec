"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path).

Every response gets an ``X-Request-Id`` (the caller's, when it is a sane token, else a new
one); responses of the Polytomic dialect echo ``X-Polytomic-Version``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyhole.ids import correlation_hex
from keyhole.tenancy.principal import Principal

logger = logging.getLogger("keyhole.access")

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9_.:-]{1,128}$")
_VERSION = re.compile(rb"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
DEFAULT_POLYTOMIC_VERSION = b"2025-09-18"
_BLOB_PATH = "/api/blobs/"  # the rest of such a path is a bearer capability

Headers = list[tuple[bytes, bytes]]


def enter_context(scope: Scope) -> Headers:
    """Record the request id in ``scope["state"]``; return the headers every response carries."""
    request_id: bytes | None = None
    version: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID.match(value):
            request_id = value
        elif name == b"x-polytomic-version" and _VERSION.match(value):
            version = value
    if request_id is None:
        request_id = correlation_hex().encode()
    scope.setdefault("state", {})["request_id"] = request_id.decode()
    headers = [(b"x-request-id", request_id)]
    path: str = scope["path"]
    if path.startswith("/api/") and not path.startswith("/api/v3"):
        headers.append((b"x-polytomic-version", version or DEFAULT_POLYTOMIC_VERSION))
    return headers


def note_principal(scope: Scope, principal: Principal) -> None:
    """Who called, for the access log line (ids only; never a key)."""
    state = scope["state"]
    state["organization_id"] = principal.organization_id
    state["principal_kind"] = principal.kind


def note_error(scope: Scope, key: str) -> None:
    """The domain error a request ended with, for the access log line."""
    scope["state"]["error_key"] = key


def log_access(scope: Scope, status: int, started: float) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    path: str = scope["path"]
    state = scope["state"]
    logger.info(
        "request",
        extra={
            "method": scope["method"],
            # never the query string (it may carry SQL or tokens), nor a download token
            "path": _BLOB_PATH if path.startswith(_BLOB_PATH) else path,
            "route": getattr(scope.get("route"), "path", None),
            "status": status,
            "request_id": state["request_id"],
            "organization_id": state.get("organization_id"),
            "principal_kind": state.get("principal_kind"),
            "connection_id": scope.get("path_params", {}).get("connection_id"),
            "error_key": state.get("error_key"),
            "ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )


Unexpected = Callable[[Scope], Response]


class RequestContext:
    """The outermost layer, around both the framework and the fast routes: the request id and
    context headers, the access log line, and the answer to an unexpected failure.

    ``unexpected`` renders that answer (the dialect's 500 envelope) and logs the failure; the
    framework's own error handler is the same function, and re-raises after answering, so a
    failure is let through only when it broke an answer already under way: a complete 500
    keeps its keep-alive connection."""

    def __init__(self, app: ASGIApp, *, unexpected: Unexpected, access_log: bool = False) -> None:
        self.app = app
        self._unexpected = unexpected
        # Off by default: every proxied call is already in the audit log and the metrics, and a
        # formatted line per request costs the proxy ~15 µs of its per-request budget.
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context_headers = enter_context(scope)
        started = time.perf_counter()
        status = 0
        answered = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *context_headers]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True

        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            status = 499  # nobody is left to answer
        except Exception:
            if status == 0:
                await self._unexpected(scope)(scope, receive, send_with_headers)
            elif not answered:
                raise
        finally:
            if self.access_log:
                log_access(scope, status, started)
