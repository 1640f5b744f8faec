"""Shaping the upstream answer: header filtering, echo scrubbing and body encoding."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence

from multidict import CIMultiDictProxy

from keyhole.proxy import contract

_REDACTED = contract.REDACTED.encode()
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml")
_FORM = "application/x-www-form-urlencoded"


def filter_headers(headers: CIMultiDictProxy[str], secrets: Sequence[str], scrub: bool) -> dict[str, str]:
    """One value per header (repeats joined with ", "), blocked and Connection-named ones removed."""
    dropped = set(contract.BLOCKED_RESPONSE_LOWER)
    for value in headers.getall("Connection", ()):
        dropped.update(token.strip().lower() for token in value.split(","))
    result: dict[str, str] = {}
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in dropped:
            continue
        if scrub and secrets:
            value = scrub_text(value, secrets)
        existing = lowered.get(lower)
        if existing is None:
            lowered[lower] = name
            result[name] = value
        else:
            result[existing] = f"{result[existing]}, {value}"
    return result


def scrub_text(value: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in value:
            value = value.replace(secret, contract.REDACTED)
    return value


def scrub_bytes(body: bytes, secrets: Sequence[str], *, truncated: bool) -> bytes:
    """Replace echoed secrets; at a truncation point also drop a trailing partial secret."""
    for secret in secrets:
        encoded = secret.encode()
        if encoded in body:
            body = body.replace(encoded, _REDACTED)
        if truncated:
            for length in range(min(len(encoded) - 1, len(body)), 0, -1):
                if body.endswith(encoded[:length]):
                    body = body[:-length]
                    break
    return body


def is_text(content_type: str) -> bool:
    lowered = content_type.lower()
    return lowered.startswith(_FORM) or any(marker in lowered for marker in _TEXT_TYPES)


def decode_body(body: bytes, content_type: str, *, truncated: bool) -> tuple[str, str]:
    """``(body, encoding)``: UTF-8 text as is, anything else base64 (``encoding`` says which)."""
    if not body:
        return "", "utf-8"
    if is_text(content_type) or not content_type:
        text = _utf8(body, truncated=truncated)
        if text is not None:
            return text, "utf-8"
    return base64.b64encode(body).decode(), "base64"


def _utf8(body: bytes, *, truncated: bool) -> str | None:
    try:
        return body.decode()
    except UnicodeDecodeError:
        if not truncated:
            return None
    for cut in (1, 2, 3):  # a cap may split a multi-byte character
        try:
            return body[:-cut].decode()
        except UnicodeDecodeError:
            continue
    return None
