"""Where a proxied call may go: an endpoint relative to the base URL, or an absolute URL on the
base URL's own site.

A credential must never reach a host its owner did not configure. An absolute URL is allowed only
when it has the base URL's scheme and the same registrable domain (eTLD+1, from the public-suffix
list bundled with ``tldextract``; never fetched). Only the ICANN section of the list is used, as
hosted Composio does (its documented example: a ``gmail.googleapis.com`` base allows
``www.googleapis.com``, which the list's private section would split). So sibling hosts under a
private suffix (``a.github.io``, ``b.github.io``) count as one site. Hosts without a registrable
domain (IP literals, ``localhost``, single labels) must match host and port exactly.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import tldextract
import yarl

from keyhole.errors import InvalidRequest

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ENDPOINT_LENGTH = 8192


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # No suffix-list URLs and no cache directory: the bundled snapshot only, no network, no disk.
    return tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True, include_psl_private_domains=False
    )


def registrable_domain(host: str) -> str | None:
    """``api.github.com`` → ``github.com``; None for IP literals and hosts with no registrable part."""
    host = host.rstrip(".").lower()
    if not host:
        return None
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return None
    parts = _extractor()(host)
    if not parts.domain or not parts.suffix:
        return None
    return f"{parts.domain}.{parts.suffix}"


def _port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else _DEFAULT_PORTS.get(scheme)


def same_site(base: yarl.URL, candidate: yarl.URL) -> bool:
    """True when ``candidate`` may receive ``base``'s credential (same scheme and site)."""
    if (candidate.scheme or "").lower() != (base.scheme or "").lower():
        return False
    base_host = (base.host or "").rstrip(".").lower()
    host = (candidate.host or "").rstrip(".").lower()
    if not base_host or not host:
        return False
    base_domain = registrable_domain(base_host)
    if base_domain is None:
        return host == base_host and _port(candidate.scheme, candidate.port) == _port(base.scheme, base.port)
    return registrable_domain(host) == base_domain


def origin_mismatch(endpoint_host: str) -> InvalidRequest:
    return InvalidRequest(
        f"the absolute endpoint's host {endpoint_host[:253]!r} is not on the connection's site: an "
        "absolute URL must share the scheme and registrable domain of the connection's base URL. "
        "Use a path relative to the base URL instead",
        key="OriginMismatch",
        metadata={"field": "endpoint"},
    )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint split for the core request contract.

    ``path`` is still unchecked (``build_upstream`` applies the path rules once, for every dialect);
    ``origin`` is set for an absolute URL and replaces the base URL for this call.
    """

    path: str
    raw_query: str
    origin: yarl.URL | None = None


def split_endpoint(endpoint: object) -> Endpoint:
    """Parse a Composio-style endpoint: a relative path (``/repos?per_page=5``) or an absolute URL."""
    if not isinstance(endpoint, str) or not endpoint:
        raise InvalidRequest(
            "endpoint is required: a path relative to the connection's base URL, or an absolute URL",
            key="invalid_proxy_request",
            metadata={"field": "endpoint"},
        )
    if len(endpoint) > MAX_ENDPOINT_LENGTH or _CONTROL.search(endpoint.strip(" ")):
        raise InvalidRequest(
            f"endpoint must be at most {MAX_ENDPOINT_LENGTH} characters, without spaces or control "
            "characters",
            key="invalid_proxy_request",
            metadata={"field": "endpoint"},
        )
    endpoint = endpoint.strip(" ")
    if "#" in endpoint:
        raise InvalidRequest(
            "endpoint must not contain a '#' fragment",
            key="invalid_proxy_request",
            metadata={"field": "endpoint"},
        )
    if not _SCHEME.match(endpoint):
        path, _, query = endpoint.partition("?")
        if path and not path.startswith("/"):
            path = "/" + path
        return Endpoint(path or "/", query)
    parts = urlsplit(endpoint)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise origin_mismatch(parts.netloc or endpoint.split("://", 1)[0])
    if "@" in parts.netloc:
        raise InvalidRequest(
            "endpoint must not carry user information ('user:password@'); credentials come from the "
            "connected account",
            key="invalid_proxy_request",
            metadata={"field": "endpoint"},
        )
    try:
        origin = yarl.URL.build(scheme=parts.scheme, host=parts.hostname, port=parts.port, encoded=False)
    except ValueError:
        raise InvalidRequest(
            "endpoint has an invalid host or port",
            key="invalid_proxy_request",
            metadata={"field": "endpoint"},
        ) from None
    return Endpoint(parts.path or "/", parts.query, origin)


def check_origin(base: yarl.URL, origin: yarl.URL) -> None:
    """Refuse (``OriginMismatch``) an absolute endpoint that is not on the base URL's site."""
    if not same_site(base, origin):
        raise origin_mismatch(origin.host or "")
