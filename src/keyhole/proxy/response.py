"""Shaping the upstream answer: header filtering and body encoding (echo scrubbing itself is
``keyhole.vault.scrub``; ``proxy.upstream`` applies both)."""

from __future__ import annotations

import base64
from itertools import chain

from multidict import CIMultiDictProxy

from keyhole.egress.decoding import DECODED_CODINGS
from keyhole.proxy import contract
from keyhole.vault.scrub import Scrubber

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml")
_FORM = "application/x-www-form-urlencoded"
_JSON_TYPES = ("application/json", "+json")


def shape_head(headers: CIMultiDictProxy[str], scrubber: Scrubber) -> tuple[dict[str, str], str]:
    """The answer's headers as shown and its content type. One value per header (repeats joined
    with ", "), blocked and Connection-named ones removed, echoed secrets replaced (a header
    *named* after a secret is dropped: no form of it can show). One search decides whether
    anything needs scrubbing, the content type included."""
    dropped = set(contract.BLOCKED_RESPONSE_LOWER)
    for value in headers.getall("Connection", ()):
        dropped.update(token.strip().lower() for token in value.split(","))
    result: dict[str, str] = {}
    lowered: dict[str, str] = {}
    for name, raw_value in headers.items():
        lower = name.lower()
        if lower in dropped:
            continue
        value = header_text(raw_value)
        existing = lowered.get(lower)
        if existing is None:
            lowered[lower] = name
            result[name] = value
        else:
            result[existing] = f"{result[existing]}, {value}"
    content_type = header_text(headers.get("Content-Type", ""))
    if scrubber and scrubber.found_in("\n".join([content_type, *chain.from_iterable(result.items())])):
        scrub = scrubber.scrub_text
        result = {name: scrub(value) for name, value in result.items() if scrub(name) == name}
        content_type = scrub(content_type)
    return result, content_type


def header_text(value: str) -> str:
    """A header value that can be serialized: the HTTP client decodes header bytes with
    ``surrogateescape``, so bytes that are not UTF-8 become U+FFFD instead of breaking JSON."""
    try:
        value.encode()
    except UnicodeEncodeError:
        try:
            raw = value.encode(errors="surrogateescape")
        except UnicodeEncodeError:  # a surrogate no byte decoding produced
            raw = value.encode(errors="surrogatepass")
        return raw.decode(errors="replace")
    return value


def opaque_coding(headers: CIMultiDictProxy[str]) -> str | None:
    """The Content-Encoding the HTTP client left undecoded (so the body cannot be scrubbed), if any.

    The egress client decodes only a single gzip or deflate coding; ``br``, ``x-gzip``,
    ``compress``, stacked codings or a repeated header reach the proxy still encoded, and the
    header itself is stripped from the answer, so an echoed credential would pass unseen.
    """
    codings = headers.getall("Content-Encoding", ())
    if not codings:
        return None
    if len(codings) == 1 and codings[0].isascii() and codings[0].lower() in DECODED_CODINGS:
        return None
    return ", ".join(codings)


def is_json(content_type: str) -> bool:
    lowered = content_type.lower()
    return any(marker in lowered for marker in _JSON_TYPES)


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
