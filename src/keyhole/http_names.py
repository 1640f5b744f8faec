"""Header and query parameter names as an upstream may read them, and the request headers
that neither a caller nor a connection's configuration may set.

The proxy's contract (``keyhole.proxy.contract``) publishes these rules and the request code
enforces them; connections check the names they configure against the same keys, so a
credential's name is locked under every spelling an upstream reads as the same name.
"""

from __future__ import annotations

import re
import unicodedata

# Refused with 400 when a caller sends them: they would let a caller smuggle state (Cookie),
# redirect the request (Host), or desynchronise framing (Content-Length, Transfer-Encoding).
# The second group describes the request's origin, client or original URL: upstreams and the
# frameworks in front of them trust these to build absolute URLs and redirects, choose a tenant,
# apply IP allow-lists or route, so the caller of a credential must not choose them. The third
# group changes the method an upstream acts on, past the allowed methods. ``Proxy`` becomes
# HTTP_PROXY under CGI (httpoxy). Refused rather than dropped: Keyhole sets none of them itself,
# and a silent drop would let the caller believe the upstream saw them.
BLOCKED_REQUEST_HEADERS = (
    "Connection",
    "Content-Length",
    "Cookie",
    "Expect",
    "Host",
    "Keep-Alive",
    "Proxy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Connection",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "CF-Connecting-IP",
    "Client-IP",
    "Fastly-Client-IP",
    "Forwarded",
    "Forwarded-For",
    "Forwarded-Host",
    "True-Client-IP",
    "X-Client-IP",
    "X-Cluster-Client-IP",
    "X-Forwarded",
    "X-Host",
    "X-HTTP-Host-Override",
    "X-Original-Host",
    "X-Original-URI",
    "X-Original-URL",
    "X-Originating-IP",
    "X-Real-IP",
    "X-Remote-Addr",
    "X-Remote-IP",
    "X-Rewrite-URL",
    "Front-End-Https",
    "Via",
    "X-Envoy-Original-Path",
    "X-Scheme",
    "X-Url-Scheme",
    "X-HTTP-Method",
    "X-HTTP-Method-Override",
    "X-Method-Override",
)
# Matched against ``header_name_key``, so they are lowercase with '-' as the only separator.
BLOCKED_REQUEST_HEADER_PREFIXES = ("proxy-", "x-forwarded-")
# How proxy info shows the prefixes.
BLOCKED_REQUEST_HEADER_PATTERNS = ("Proxy-*", "X-Forwarded-*")

BLOCKED_REQUEST_LOWER = frozenset(name.lower() for name in BLOCKED_REQUEST_HEADERS)


# -- locked names ----------------------------------------------------------------------------
# A caller must not send a second value for an injected credential under a name the upstream
# reads as the credential's. Every comparison against a credential's name (and against the
# blocked headers) goes through these keys: two names with one key may be one name upstream.

_SIMPLE_NAME = re.compile(r"[A-Za-z0-9_-]+")  # fullmatch: '$' would allow a final \n
_HEX = frozenset(b"0123456789ABCDEFabcdef")
# Servers trim whitespace and control characters around names; zero-width and other format
# characters are invisible in logs and stripped by some.
_EDGE = "".join(
    chr(code)
    for code in (
        *range(0x21),  # C0 controls and space
        *range(0x7F, 0xA1),  # DEL, C1 controls, no-break space
        0xAD,
        0x1680,
        0x180E,
        *range(0x2000, 0x2010),  # spaces, zero-width characters, directional marks
        *range(0x2028, 0x2030),
        *range(0x205F, 0x2065),
        0x3000,
        0xFEFF,
    )
)
# PHP reads '.' and ' ' in a parameter name as '_'; CGI and WSGI servers expose header names
# with '-' turned into '_' (HTTP_X_API_KEY), so '_' and '-' name one header.
_QUERY_SEPARATORS = str.maketrans({".": "_", " ": "_"})
_HEADER_SEPARATORS = str.maketrans({"_": "-", ".": "-", " ": "-"})
# Decode-and-normalise rounds. Each round decodes percent escapes completely; more rounds only
# matter for fullwidth '%' or hex digits that are themselves percent-encoded, which no server
# decodes this many times.
_ROUNDS = 4


def _percent_decoded(text: str) -> str:
    """Percent escapes decoded until none is left, as by an upstream that decodes again and again.

    One pass that re-examines the output's tail after each decoded byte: the result equals
    repeated ``unquote`` (the rewriting cannot overlap), without its quadratic cost on
    ``%252525...``."""
    out = bytearray()
    for byte in text.encode("utf-8", "surrogatepass"):
        out.append(byte)
        while len(out) >= 3 and out[-3] == 0x25 and out[-2] in _HEX and out[-1] in _HEX:
            value = int(out[-2:], 16)
            del out[-3:]
            out.append(value)
    return out.decode("utf-8", "replace")


def _name_key(name: str, separators: dict[int, str]) -> str:
    text = name
    for _ in range(_ROUNDS):
        # '+' is a space in form encoding, and still one after a layer that decoded %2B.
        decoded = unicodedata.normalize("NFKC", _percent_decoded(text).replace("+", " "))
        if decoded == text:
            break
        text = decoded
    # Servers written in C read a name only up to its first NUL.
    text = text.strip(_EDGE).split("\x00", 1)[0]
    bracket = text.find("[")
    # PHP and Rails read ``name[]``, ``name[0]`` and ``name[a][b]`` as (part of) ``name``; PHP
    # reads an unmatched '[' as '_'.
    if bracket >= 0 and "]" in text[bracket:]:
        text = text[:bracket]
    elif bracket >= 0:
        text = f"{text[:bracket]}_{text[bracket + 1 :]}"
    return text.strip(_EDGE).casefold().translate(separators)


def query_name_key(name: str) -> str:
    """A query parameter name as an upstream may read it: case-folded, percent-decoded until
    stable ('+' as space), trimmed of whitespace and control characters, cut at NUL, without a
    trailing ``[...]``, with '.' and ' ' as '_'. ``name`` is as sent or already decoded."""
    if _SIMPLE_NAME.fullmatch(name):
        return name.lower()  # the same key, without the slow path for everyday names
    return _name_key(name, _QUERY_SEPARATORS)


def header_name_key(name: str) -> str:
    """A header name as an upstream may read it: the query rules, with '_', '.' and ' ' as '-'."""
    if _SIMPLE_NAME.fullmatch(name):
        return name.lower().replace("_", "-")
    return _name_key(name, _HEADER_SEPARATORS)


def is_blocked_key(key: str) -> bool:
    """Whether a header whose ``header_name_key`` is ``key`` is one the contract refuses (the
    blocked names are their own keys: lowercase, with '-' as the only separator)."""
    return key in BLOCKED_REQUEST_LOWER or key.startswith(BLOCKED_REQUEST_HEADER_PREFIXES)


def is_blocked_header(name: str) -> bool:
    """The same for a name in any spelling, from a caller or a connection's configuration."""
    return is_blocked_key(header_name_key(name))
