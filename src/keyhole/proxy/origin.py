"""Where a proxied call may go: an endpoint relative to the base URL, or an absolute URL on the
base URL's own site and under its path.

A credential must never reach a target its owner did not configure. An absolute URL is allowed
only when it has the base URL's scheme and effective port, a path under the base URL's path, and a
host with the base URL host's registrable domain under the *whole* public-suffix list, ICANN and
private sections alike: on shared hosting (``herokuapp.com``, ``github.io``, ``s3.amazonaws.com``)
every customer's host is a site of its own. Hosts without a registrable domain (IP literals,
``localhost``, single labels, names under no listed suffix, a host that is itself a public suffix)
must match exactly.

This is stricter than hosted Composio, which uses only the ICANN section: its documented example,
a ``gmail.googleapis.com`` base allowing ``www.googleapis.com``, is refused here, because
``googleapis.com`` is a suffix of the private section.

The list is the snapshot bundled with ``tldextract`` (never fetched, never cached on disk), or the
operator's newer ``public_suffix_list.dat`` (``KEYHOLE_PUBLIC_SUFFIX_LIST``), read once at start.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import idna
import tldextract
import yarl

from keyhole.errors import InvalidRequest

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A list without all three markers is cut short or is not a suffix list; a list missing its
# private section would quietly merge every customer's host on shared hosting into one site.
_SECTION_MARKERS = (
    "// ===BEGIN ICANN DOMAINS===",
    "// ===BEGIN PRIVATE DOMAINS===",
    "// ===END PRIVATE DOMAINS===",
)
MAX_ENDPOINT_LENGTH = 8192


def _ascii(name: str) -> str:
    """A name in the lower-case ASCII (IDNA) form that yarl builds and the egress layer resolves."""
    name = name.lower()
    if name.isascii():
        return name
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except UnicodeError:  # the same fallback as yarl's, so that both spell a name alike
        return name.encode("idna").decode("ascii")


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def canonical_host(host: str | None) -> str:
    """``API.X.com.`` → ``api.x.com``; a Unicode name in its IDNA form; an IP literal compressed."""
    host = (host or "").strip("[]").rstrip(".")
    if not host:
        return ""
    literal = _ip_literal(host)
    return _ascii(host) if literal is None else str(literal)


class PublicSuffixList:
    """The rules of the public-suffix list (https://publicsuffix.org/list/), all sections alike."""

    __slots__ = ("_exact", "_exceptions", "_wildcards")

    def __init__(self, rules: Iterable[str]) -> None:
        exact: set[str] = set()
        wildcards: set[str] = set()
        exceptions: set[str] = set()
        for rule in rules:
            if rule.startswith("!"):
                exceptions.add(_ascii(rule[1:]))
            elif rule.startswith("*."):
                wildcards.add(_ascii(rule[2:]))
            else:
                exact.add(_ascii(rule))
        if not exact:
            raise ValueError("the public-suffix list has no rules")
        self._exact = frozenset(exact)
        self._wildcards = frozenset(wildcards)
        self._exceptions = frozenset(exceptions)

    @classmethod
    def parse(cls, text: str) -> PublicSuffixList:
        """The rules of a ``public_suffix_list.dat``: one per line, read up to the first
        whitespace, ``//`` comments skipped."""
        positions = [text.find(marker) for marker in _SECTION_MARKERS]
        if -1 in positions or positions != sorted(positions):
            raise ValueError(
                "not a complete public-suffix list: it must hold the ICANN and the private sections "
                f"({', '.join(_SECTION_MARKERS)})"
            )
        lines = (line.strip() for line in text.splitlines())
        return cls(line.split()[0] for line in lines if line and not line.startswith("//"))

    @classmethod
    def from_file(cls, path: Path) -> PublicSuffixList:
        try:
            return cls.parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, ValueError) as exc:
            raise ValueError(f"KEYHOLE_PUBLIC_SUFFIX_LIST {str(path)!r}: {exc}") from None

    def registrable_domain(self, host: str) -> str | None:
        """The public suffix plus one label, for a canonical host; None when there is none."""
        labels = host.split(".")
        if len(labels) < 2 or not all(labels):
            return None
        start = self._suffix_start(labels)
        if start is None or start == 0:
            return None
        return ".".join(labels[start - 1 :])

    def _suffix_start(self, labels: list[str]) -> int | None:
        """Index of the public suffix's first label. An exception rule wins over every other rule,
        then the longest matching rule. No match is None rather than the list's implicit ``*``
        rule: a name under an unlisted top-level label (``.internal``, ``.test``) is a private
        name, and gets an exact host match."""
        names = [".".join(labels[index:]) for index in range(len(labels))]
        for index, name in enumerate(names):
            if name in self._exceptions:
                return index + 1
        for index, name in enumerate(names):
            if name in self._exact or (index + 1 < len(names) and names[index + 1] in self._wildcards):
                return index
        return None


@functools.cache
def bundled_suffixes() -> PublicSuffixList:
    # No suffix-list URLs and no cache directory: the package's snapshot only, no network, no disk.
    extractor = tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True, include_psl_private_domains=True
    )
    return PublicSuffixList(extractor.tlds)


_operator_suffixes: PublicSuffixList | None = None


def use_public_suffix_list(path: Path | None) -> None:
    """Replace the bundled snapshot with the operator's list for this process (None: the snapshot).
    Called once at start-up, from settings."""
    global _operator_suffixes
    _operator_suffixes = None if path is None else PublicSuffixList.from_file(path)


def public_suffixes() -> PublicSuffixList:
    return _operator_suffixes or bundled_suffixes()


def registrable_domain(host: str, suffixes: PublicSuffixList | None = None) -> str | None:
    """``api.github.com`` → ``github.com``, ``a.github.io`` → ``a.github.io``; None for IP literals
    and hosts with no registrable part (``localhost``, ``github.io``)."""
    host = canonical_host(host)
    if not host or _ip_literal(host) is not None:
        return None
    return (suffixes or public_suffixes()).registrable_domain(host)


def _port(url: yarl.URL) -> int | None:
    explicit = url.explicit_port
    return explicit if explicit is not None else _DEFAULT_PORTS.get(url.scheme.lower())


def same_site(base: yarl.URL, candidate: yarl.URL, suffixes: PublicSuffixList | None = None) -> bool:
    """True when ``candidate`` may receive ``base``'s credential: same scheme, same effective port,
    and the same host or the same registrable domain. Hosts are compared as the egress layer
    connects to them (``raw_host``: IDNA-encoded)."""
    scheme = candidate.scheme.lower()
    if scheme not in _DEFAULT_PORTS or scheme != base.scheme.lower() or _port(candidate) != _port(base):
        return False
    base_host = canonical_host(base.raw_host)
    host = canonical_host(candidate.raw_host)
    if not base_host or not host:
        return False
    if host == base_host:
        return True
    domain = registrable_domain(base_host, suffixes)
    return domain is not None and registrable_domain(host, suffixes) == domain


def under_base_path(base_path: str, path: str) -> bool:
    """True when ``path`` lies under ``base_path`` on a segment boundary: ``/v2/users`` and ``/v2``
    under ``/v2`` or ``/v2/``, but not ``/v2x``, ``/V2``, ``/v1`` or ``/``. Both are compared in the
    percent-encoded form sent upstream, so an encoded ``/`` (``/v2%2F..``) is not a boundary."""
    prefix = base_path.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def origin_mismatch(problem: str) -> InvalidRequest:
    return InvalidRequest(
        f"{problem}: an absolute endpoint must have the scheme and port of the connection's base URL, "
        "a host with the same registrable domain, and a path under the base URL's path. Use a path "
        "relative to the base URL instead",
        key="OriginMismatch",
        metadata={"field": "endpoint"},
    )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint split for the core request contract.

    ``path`` is still unchecked (``build_upstream`` applies the path rules once, for every dialect);
    ``origin`` is set for an absolute URL and replaces the base URL's scheme, host and port for this
    call, once ``check_origin`` has found ``path`` under the base URL's path.
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
        where = (parts.netloc or endpoint.split("://", 1)[0])[:253]
        raise origin_mismatch(f"the absolute endpoint {where!r} is not an http(s) URL with a host")
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


def check_origin(
    base: yarl.URL, origin: yarl.URL, path: str, suffixes: PublicSuffixList | None = None
) -> None:
    """Refuse (``OriginMismatch``) an absolute endpoint off the base URL's site or outside its path.

    ``path`` is the checked, percent-encoded path exactly as it will be sent (``check_path``'s
    result); the base URL's path is compared as sent for a relative call (``raw_path``)."""
    if not same_site(base, origin, suffixes):
        host = (origin.raw_host or "")[:253]
        raise origin_mismatch(
            f"the absolute endpoint {origin.scheme}://{host}:{_port(origin)} is not on the connection's site"
        )
    if not under_base_path(base.raw_path, path):
        raise origin_mismatch("the absolute endpoint's path is not under the connection's base URL path")
