"""The proxy's published contract: what callers may send and what they get back.

Proxy info (``GET /proxy/info``) renders exactly these values, and the request and
response code enforces them, so the two cannot drift apart.
"""

from __future__ import annotations

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_TYPES = ("object", "array", "string", "null")
QUERY_MODES = ("query", "rawQuery")
QUERY_VALUE_TYPES = ("string", "number", "boolean", "array")

# Refused with 400 when a caller sends them: they would let a caller smuggle state (Cookie),
# redirect the request (Host), or desynchronise framing (Content-Length, Transfer-Encoding).
BLOCKED_REQUEST_HEADERS = (
    "Connection",
    "Content-Length",
    "Cookie",
    "Expect",
    "Host",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Connection",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
)
BLOCKED_REQUEST_HEADER_PREFIXES = ("proxy-",)

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
    "characters; cannot set a credential parameter; cannot be combined with 'query'"
)
MERGE_RULES = {"headers": "override", "query": "merge"}
REDACTED = "[REDACTED]"
MAX_PATH_LENGTH = 8192
MAX_HEADERS = 100
MAX_HEADER_VALUE_LENGTH = 8192

BLOCKED_REQUEST_LOWER = frozenset(name.lower() for name in BLOCKED_REQUEST_HEADERS)
BLOCKED_RESPONSE_LOWER = frozenset(name.lower() for name in BLOCKED_RESPONSE_HEADERS)
