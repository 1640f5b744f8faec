"""The proxy's published contract: what callers may send and what they get back.

Proxy info (``GET /proxy/info``) renders exactly these values, and the request and
response code enforces them, so the two cannot drift apart.
"""

from __future__ import annotations

# The blocked request headers are published here; the rule that refuses them is shared with
# the connections that configure headers.
from keyhole.http_names import BLOCKED_REQUEST_HEADER_PATTERNS as BLOCKED_REQUEST_HEADER_PATTERNS
from keyhole.http_names import BLOCKED_REQUEST_HEADERS as BLOCKED_REQUEST_HEADERS

# HEAD is in the contract of both dialects: Composio's clients send it, and an answer without a
# body carries nothing a GET would not.
ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Methods an upstream must not act on twice: a failed call of another method is never retried.
SAFE_METHODS = frozenset({"GET", "HEAD"})
BODY_TYPES = ("object", "array", "string", "null")
QUERY_MODES = ("query", "rawQuery")
QUERY_VALUE_TYPES = ("string", "number", "boolean", "array")

# Removed from upstream answers: cookies must not reach callers, and framing headers
# describe the upstream's encoding, not the body Keyhole returns.
BLOCKED_RESPONSE_HEADERS = (
    "Connection",
    "Content-Encoding",
    "Content-Length",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Connection",
    "Set-Cookie",
    "Set-Cookie2",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "X-Powered-By",
)

PATH_RULE = (
    "relative to the connection's base URL; starts with '/'; no '//' prefix, scheme, backslash, "
    "control character, '?' or '#'; no '.' or '..' segment, even percent-encoded"
)
RAW_QUERY_RULE = (
    "appended unchanged after the inherited query; no leading '?', no '#', no spaces or control "
    "characters; cannot set a credential parameter under any spelling an upstream may read as its "
    "name (case, whitespace, '+', percent-encoding, NUL, '[]', '.'); '&' and ';' both separate "
    "parameters; cannot be combined with 'query'"
)
MERGE_RULES = {"headers": "override", "query": "merge"}
MAX_HEADERS = 100
MAX_HEADER_VALUE_LENGTH = 8192

# A call's whole request body (the dialect's envelope around the upstream body) is read before
# it is parsed, up to a size derived from the connection's body cap: a JSON string body may
# escape each byte as six (``\u00XX``); base64 and JSON bodies are smaller. Never more than
# ``MAX_ENVELOPE_BYTES``, which is also the bound while the connection is not known yet (a
# Composio call names its account inside the envelope).
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
_ENVELOPE_OVERHEAD = 65_536


def envelope_limit(max_request_body_bytes: int) -> int:
    return min(max_request_body_bytes * 6 + _ENVELOPE_OVERHEAD, MAX_ENVELOPE_BYTES)


BLOCKED_RESPONSE_LOWER = frozenset(name.lower() for name in BLOCKED_RESPONSE_HEADERS)
