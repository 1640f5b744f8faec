"""The path of a proxied call (and of a connection's health check) as it goes on the wire.

One rule for every path sent under a connection's base URL: whatever an upstream decodes, it
must not leave the base URL. The proxy's contract describes the rule to callers (``PATH_RULE``).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from keyhole.errors import CallField, InvalidRequest, call_error

MAX_PATH_LENGTH = 8192

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


_PATH = CallField.PATH


def _invalid(*message: str | CallField) -> InvalidRequest:
    return call_error(InvalidRequest, _PATH, _PATH, *message, key="invalid_proxy_request")


def check_path(path: object) -> str:
    """Return the path percent-encoded for the wire; refuse anything that could leave the base URL."""
    if not isinstance(path, str) or not path:
        raise _invalid(" is required and must be a string starting with '/'")
    if len(path) > MAX_PATH_LENGTH:
        raise _invalid(f" is longer than {MAX_PATH_LENGTH} characters")
    if not path.startswith("/") or path.startswith("//"):
        raise _invalid(
            " must be relative to the connection's base URL: start with a single '/', with no scheme or host"
        )
    if "\\" in path or _CONTROL.search(path):
        raise _invalid(" must not contain backslashes or control characters")
    if "?" in path or "#" in path:
        raise _invalid(
            " must not contain '?' or '#'; put parameters in ", CallField.QUERY, " or ", CallField.RAW_QUERY
        )
    if _BAD_PERCENT.search(path):
        raise _invalid(" has a '%' that does not start a %XX escape")
    decoded = path
    for _ in range(3):  # upstreams that decode twice must not see a traversal either
        if "%" in decoded:
            decoded = unquote(decoded)
            if "\\" in decoded or _CONTROL.search(decoded):
                raise _invalid(" must not encode backslashes or control characters")
            if decoded.startswith("//"):
                raise _invalid(" must not encode a '//' prefix")
        # Every dot segment follows a '/', since the path starts with one.
        if "/." in decoded and any(segment in {".", ".."} for segment in decoded.split("/")):
            raise _invalid(" must not contain '.' or '..' segments")
        if "%" not in decoded:
            break
    return quote(path, safe=_PATH_SAFE)
