"""AWS Signature Version 4 for the few S3 calls obstore does not make for us.

Only header signing of requests without a body (the payload hash is that of no bytes), which is
all that listing and aborting multipart uploads need.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

EMPTY_PAYLOAD = hashlib.sha256(b"").hexdigest()
_ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def encode(value: str, *, keep_slashes: bool = False) -> str:
    """SigV4's URI encoding: everything but unreserved characters (and ``/`` in S3 paths)."""
    return quote(value, safe="/-_.~" if keep_slashes else "-_.~")


def canonical_query(params: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{encode(name)}={encode(value)}" for name, value in sorted(params))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    credentials: Credentials,
    *,
    method: str,
    host: str,
    path: str,
    query: str,
    region: str,
    now: datetime,
    service: str = "s3",
) -> dict[str, str]:
    """The headers to send with the request (``Host`` included): ``path`` is already encoded and
    ``query`` canonical, exactly as they go on the request line."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    headers: dict[str, str] = {"host": host, "x-amz-content-sha256": EMPTY_PAYLOAD, "x-amz-date": stamp}
    if credentials.session_token:
        headers["x-amz-security-token"] = credentials.session_token
    names = sorted(headers)
    canonical = "\n".join(
        (
            method,
            path,
            query,
            *(f"{name}:{headers[name].strip()}" for name in names),
            "",
            ";".join(names),
            EMPTY_PAYLOAD,
        )
    )
    to_sign = "\n".join((_ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()))
    key = _hmac(("AWS4" + credentials.secret_access_key).encode(), stamp[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"{_ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers
