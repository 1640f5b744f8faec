"""Which upstream addresses the gateway may connect to."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from keyhole.errors import EgressDenied

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_V4_CLASSES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(cidr), reason)
    for cidr, reason in (
        ("0.0.0.0/32", "unspecified"),
        ("0.0.0.0/8", "this-network"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("169.254.0.0/16", "link-local"),
        ("100.64.0.0/10", "cgnat"),
        ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("192.0.0.0/24", "ietf-protocol"),
        ("192.0.2.0/24", "documentation"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
    )
)

_V6_CLASSES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(cidr), reason)
    for cidr, reason in (
        ("fe80::/10", "link-local"),
        ("fc00::/7", "unique-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
        ("2001:db8::/32", "documentation"),
        ("100::/64", "discard"),
    )
)

_V4_COMPATIBLE = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_TEREDO = IPv6Network("2001::/32")
_UNSPECIFIED_V6 = IPv6Address("::")
_LOOPBACK_V6 = IPv6Address("::1")


def _classify_v4(address: IPv4Address) -> str | None:
    for network, reason in _V4_CLASSES:
        if address in network:
            return reason
    if address.is_multicast:
        return "multicast"
    return None if address.is_global else "reserved"


def _embedded(prefix: str, v4: IPv4Address) -> str | None:
    reason = _classify_v4(v4)
    return None if reason is None else f"{prefix} {reason}"


def _classify_v6(address: IPv6Address) -> str | None:
    if address == _UNSPECIFIED_V6:
        return "unspecified"
    if address == _LOOPBACK_V6:
        return "loopback"
    mapped = address.ipv4_mapped
    if mapped is not None:
        return _embedded("ipv4-mapped", mapped)
    if address in _V4_COMPATIBLE:
        return _embedded("ipv4-compatible", IPv4Address(int(address) & 0xFFFFFFFF))
    if address in _NAT64:
        return _embedded("nat64", IPv4Address(int(address) & 0xFFFFFFFF))
    if address in _NAT64_LOCAL:
        # Where the IPv4 address sits depends on the operator's prefix length (RFC 6052),
        # so it cannot be checked; operators using it allow it explicitly.
        return "nat64 local-use"
    sixtofour = address.sixtofour
    if sixtofour is not None:
        return _embedded("6to4", sixtofour)
    if address in _TEREDO:
        return "teredo"
    for network, reason in _V6_CLASSES:
        if address in network:
            return reason
    if address.is_multicast:
        return "multicast"
    return None if address.is_global else "reserved"


@lru_cache(maxsize=4096)
def classify(address: IPAddress) -> str | None:
    """The reason ``address`` is not publicly routable, or None when it is."""
    if isinstance(address, IPv4Address):
        return _classify_v4(address)
    return _classify_v6(address)


def _exact_cidr(address: IPAddress) -> str:
    if isinstance(address, IPv4Address):
        return f"{address}/32"
    return f"{IPv6Address(int(address))}/128"  # drops any %scope


class EgressPolicy:
    """Refuses non-public upstream addresses unless an operator CIDR covers them.

    The allow list matches the address exactly as resolved, family included: an allow of
    ``127.0.0.0/8`` does not cover ``::ffff:127.0.0.1`` nor ``::1``. An allow list names
    families explicitly, so an IPv4 range never silently opens its IPv6 spellings.
    """

    __slots__ = ("_allow_v4", "_allow_v6")

    def __init__(self, allow: Sequence[IPNetwork] = ()) -> None:
        self._allow_v4 = tuple(n for n in allow if isinstance(n, IPv4Network))
        self._allow_v6 = tuple(n for n in allow if isinstance(n, IPv6Network))

    def refusal_reason(self, address: IPAddress) -> str | None:
        """None when ``address`` may be contacted, else the class it was refused as."""
        reason = classify(address)
        if reason is None:
            return None
        allow = self._allow_v4 if isinstance(address, IPv4Address) else self._allow_v6
        for network in allow:
            if address in network:
                return None
        return reason

    def check(self, host: str, address: IPAddress) -> None:
        reason = self.refusal_reason(address)
        if reason is not None:
            raise denial(host, address, reason)


def denial(host: str, address: IPAddress, reason: str) -> EgressDenied:
    if host == str(address):
        what = f"{address} ({reason}) is not a public address"
    else:
        what = f"{host} resolves to {address} ({reason})"
    return EgressDenied(
        f"refused: {what}; add a CIDR such as {_exact_cidr(address)} to KEYHOLE_EGRESS_ALLOW to allow it",
        metadata={"host": host, "address": str(address), "reason": reason},
    )
