"""Translate aiohttp and socket failures into domain errors.

Messages are built from host and port only: aiohttp's own messages may carry the full URL,
whose query string can hold an injected credential.
"""

from __future__ import annotations

import errno

import aiohttp

from keyhole.errors import InvalidRequest, KeyholeError, UpstreamTimeout, UpstreamUnreachable

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
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidRequest(f"cannot send a request to {host}: the URL is not a valid upstream URL")
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError and aiohttp's *TimeoutError included
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return UpstreamTimeout(f"timed out connecting to {where}")
        return UpstreamTimeout(f"timed out waiting for {where}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return UpstreamUnreachable(f"could not resolve {host}: {os_reason(exc.os_error)}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return UpstreamUnreachable(f"TLS certificate of {where} was rejected")
    if isinstance(exc, aiohttp.ClientSSLError):
        return UpstreamUnreachable(f"TLS handshake with {where} failed")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamUnreachable(f"could not connect to {where}: {os_reason(exc.os_error)}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return UpstreamUnreachable(f"{where} closed the connection before the response was complete")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamUnreachable(f"the response body from {where} was cut off or malformed")
    if isinstance(exc, aiohttp.ClientResponseError):
        return UpstreamUnreachable(f"{where} sent an invalid HTTP response")
    if isinstance(exc, OSError):
        return UpstreamUnreachable(f"connection to {where} failed: {os_reason(exc)}")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamUnreachable(f"request to {where} failed ({type(exc).__name__})")
    return exc
