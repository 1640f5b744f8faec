"""Reading an API key out of request headers, for every dialect.

Accepted: ``Authorization: Bearer <user key>``, ``Authorization: Basic base64(org_id:org key)``,
and ``x-api-key`` / ``x-user-api-key`` / ``x-org-api-key`` holding either kind of key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from keyhole.errors import Unauthenticated

_API_KEY_HEADERS = ("x-api-key", "x-user-api-key", "x-org-api-key")
_MAX_KEY = 512


@dataclass(frozen=True, slots=True)
class PresentedKey:
    key: str
    organization_id: str | None  # set by Basic auth: the key must belong to this organization
    scheme: str  # "bearer" | "basic" | "header"


def presented_key(headers: Mapping[str, str]) -> PresentedKey:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer" and value:
            return PresentedKey(_bounded(value), None, "bearer")
        if scheme == "basic" and value:
            return _basic(value)
        raise Unauthenticated(
            "the Authorization header must be 'Bearer <user key>' or 'Basic base64(organization_id:org key)'",
            key="invalid_authorization",
        )
    for name in _API_KEY_HEADERS:
        header = headers.get(name)
        if header:
            return PresentedKey(_bounded(header.strip()), None, "header")
    raise Unauthenticated(
        "no API key: send 'Authorization: Bearer <key>' or an 'x-api-key' header",
        key="missing_credentials",
    )


def _basic(value: str) -> PresentedKey:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("Basic credentials are not valid base64", key="invalid_authorization") from None
    organization_id, sep, key = decoded.partition(":")
    if not sep or not organization_id or not key:
        raise Unauthenticated(
            "Basic credentials must be base64('<organization_id>:<organization key>')",
            key="invalid_authorization",
        )
    return PresentedKey(_bounded(key), organization_id, "basic")


def _bounded(key: str) -> str:
    if len(key) > _MAX_KEY:
        raise Unauthenticated("invalid API key", key="invalid_api_key")
    return key
