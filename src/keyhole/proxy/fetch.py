"""Fetching a caller-named URL (an upload's source) through the egress layer, with no credential.

The same SSRF rules as every upstream call apply (checked and pinned addresses, no redirects, a
deadline) and the body is read with a cap, so a caller cannot use it to reach internal hosts or
to make the gateway buffer an unbounded file.
"""

from __future__ import annotations

import yarl

from keyhole.egress import EgressClient, read_capped
from keyhole.errors import InvalidRequest, KeyholeError
from keyhole.proxy.response import header_text


def _failed(message: str, reason: str) -> InvalidRequest:
    return InvalidRequest(
        message, key="BinaryBodyFetchFailed", metadata={"field": "binary_body.url", "reason": reason}
    )


async def fetch_bytes(
    egress: EgressClient, url: str, *, cap: int, timeout_ms: int
) -> tuple[bytes, str | None]:
    """``(body, content type)`` of a GET on ``url``; 400 ``BinaryBodyFetchFailed`` on any failure."""
    try:
        target = yarl.URL(url)
    except ValueError:
        raise _failed("binary_body.url is not a valid URL", "invalid_url") from None
    if target.scheme not in ("http", "https") or not target.host or target.user or target.password:
        raise _failed("binary_body.url must be an http or https URL without user information", "invalid_url")
    try:
        async with egress.request(
            "GET", target, headers={"Accept": "*/*"}, data=None, timeout_ms=timeout_ms
        ) as response:
            if not 200 <= response.status < 300:
                raise _failed(
                    f"fetching binary_body.url answered HTTP {response.status} (redirects are not followed)",
                    "http_status",
                )
            body, truncated = await read_capped(response, cap)
            content_type = response.headers.get("Content-Type")
    except InvalidRequest as error:
        if error.key == "BinaryBodyFetchFailed":
            raise
        raise _failed(f"could not fetch binary_body.url: {error.message}", error.key) from None
    except KeyholeError as error:
        raise _failed(f"could not fetch binary_body.url: {error.message}", error.key) from None
    if truncated:
        raise _failed(f"the file at binary_body.url is larger than {cap} bytes", "too_large")
    return body, header_text(content_type) if content_type else None
