"""Translate connection, TLS and HTTP failures into domain errors.

Messages are built from host and port only: a URL may carry an injected credential in its
query string, so it never appears in an error.
"""

from __future__ import annotations

import errno
import ssl

from keyhole.egress.http1 import (
    ConnectFailed,
    ConnectTimeout,
    UpstreamBodyError,
    UpstreamClosed,
    UpstreamProtocolError,
)
from keyhole.errors import KeyholeError, UpstreamTimeout, UpstreamUnreachable

_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection closed",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
}


def os_reason(error: OSError) -> str:
    known = _ERRNO_REASONS.get(error.errno) if error.errno is not None else None
    if known is not None:
        return known
    if error.strerror:
        return error.strerror[:1].lower() + error.strerror[1:]
    return type(error).__name__


def upstream_error(exc: BaseException, host: str | None, port: int | None) -> BaseException:
    """The domain error for ``exc``; anything unrecognised is returned unchanged."""
    where = f"{host}:{port}"
    if isinstance(exc, KeyholeError):
        return exc
    if isinstance(exc, ConnectTimeout):
        return UpstreamTimeout(f"timed out connecting to {where}")
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"timed out waiting for {where}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return UpstreamUnreachable(f"TLS certificate of {where} was rejected")
    if isinstance(exc, ssl.SSLError):
        return UpstreamUnreachable(f"TLS handshake with {where} failed")
    if isinstance(exc, ConnectFailed):
        return UpstreamUnreachable(f"could not connect to {where}: {os_reason(exc.os_error)}")
    if isinstance(exc, UpstreamClosed):
        return UpstreamUnreachable(f"{where} closed the connection before the response was complete")
    if isinstance(exc, UpstreamBodyError):
        return UpstreamUnreachable(f"the response body from {where} was cut off or malformed")
    if isinstance(exc, UpstreamProtocolError):
        return UpstreamUnreachable(f"{where} sent an invalid HTTP response")
    if isinstance(exc, OSError):
        return UpstreamUnreachable(f"connection to {where} failed: {os_reason(exc)}")
    return exc
