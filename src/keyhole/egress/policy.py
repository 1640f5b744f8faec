"""Which upstream addresses the gateway may connect to.

IPv4 addresses are refused when they fall in a special-purpose (non-global) range. IPv6 is an
allow-list: only global unicast (``2000::/3``) outside the special-purpose ranges of the IANA
IPv6 registry counts as public; everything else is refused.

Every IPv6 form that embeds an IPv4 address is decoded, and refused when the embedded address is
not global. With a global embedded address:

* IPv4-mapped (``::ffff:0:0/96``) gets the embedded address's verdict: the kernel connects to
  that IPv4 address itself, so nothing but the address decides where the packets go.
* An ISATAP interface ID (``…:0:5efe:a.b.c.d``) in an otherwise global address gets the global
  address's verdict: it is an ordinary routed IPv6 address unless this host tunnels it.
* Every other form (IPv4-compatible ``::/96``, IPv4-translated ``::ffff:0:0:0/96``, NAT64
  ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16``, Teredo ``2001::/32``) is refused
  too: it reaches the IPv4 host through a translator or relay whose behaviour the gateway cannot
  see. An operator who runs one allows its prefix.

The operator's allow list (``KEYHOLE_EGRESS_ALLOW``) re-opens the addresses it covers, family by
family, with one restriction: an IPv6 address that embeds a non-global IPv4 address is re-opened
only by a CIDR longer than /96, one that names hosts rather than a translator. So allowing
``64:ff9b::/96`` opens the public IPv4 Internet through the NAT64 translator, never the private
networks behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import NamedTuple

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
        # All of it, the PCP and TURN anycast addresses too: their nearest instance is usually
        # a device on the gateway's own network.
        ("192.0.0.0/24", "ietf-protocol"),
        ("192.0.2.0/24", "documentation"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("192.88.99.0/24", "6to4-relay"),
    )
)

# Outside 2000::/3 nothing is public; these only name the refusal.
_V6_OUTSIDE: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(cidr), reason)
    for cidr, reason in (
        ("fe80::/10", "link-local"),
        ("fc00::/7", "unique-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
        ("100::/64", "discard"),
    )
)

# Inside 2000::/3, the non-global ranges of the IANA registry (2001::/32 and 2002::/16 are
# decoded before these are consulted).
_V6_SPECIAL: tuple[tuple[IPv6Network, str | None], ...] = tuple(
    (IPv6Network(cidr), reason)
    for cidr, reason in (
        ("2001:3::/32", None),  # AMT
        ("2001:4:112::/48", None),  # AS112-v6
        ("2001:20::/28", None),  # ORCHIDv2
        ("2001:30::/28", None),  # drone remote ID
        ("2001:2::/48", "benchmarking"),
        # The PCP, TURN and DNS-SD anycast addresses (2001:1::1-3) stay in here, like their
        # IPv4 counterparts in 192.0.0.0/24.
        ("2001::/23", "ietf-protocol"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
    )
)

_MASK32 = 0xFFFFFFFF
# The /96 forms, by the 96 bits above the IPv4 address.
_MAPPED = 0xFFFF  # ::ffff:0:0/96
_TRANSLATED = 0xFFFF_0000  # ::ffff:0:0:0/96
_NAT64 = 0x0064_FF9B_0000_0000_0000_0000  # 64:ff9b::/96
_NAT64_LOCAL = 0x0064_FF9B_0001  # 64:ff9b:1::/48, by its top 48 bits
_6TO4 = 0x2002  # 2002::/16, by its top 16 bits
_TEREDO = 0x2001_0000  # 2001::/32, by its top 32 bits
# ISATAP interface IDs (RFC 5214): 0000:5efe or 0200:5efe, either u/g bit set, then IPv4.
_ISATAP_MASK = 0xFCFF_FFFF
_ISATAP = 0x5EFE


class Refusal(NamedTuple):
    reason: str
    # The address embeds (or, for local-use NAT64, may embed) a non-global IPv4 address: only
    # an allow longer than /96 re-opens it.
    needs_host_allow: bool


def _classify_v4(address: IPv4Address) -> str | None:
    for network, reason in _V4_CLASSES:
        if address in network:
            return reason
    if address.is_multicast:
        return "multicast"
    return None if address.is_global else "reserved"


def _embedding(form: str, *embedded: int) -> Refusal:
    """A translated form is refused whatever it embeds; the reason names a non-global address."""
    for value in embedded:
        reason = _classify_v4(IPv4Address(value))
        if reason is not None:
            return Refusal(f"{form} {reason}", True)
    return Refusal(form, False)


def _classify_v6(address: IPv6Address) -> Refusal | None:
    value = int(address)
    if value >> 125 != 1:
        return _outside_global_unicast(address, value)
    if value >> 112 == _6TO4:
        return _embedding("6to4", (value >> 80) & _MASK32)
    if value >> 96 == _TEREDO:
        # The client's address is stored inverted; it is where the relay delivers.
        return _embedding("teredo", ~value & _MASK32, (value >> 64) & _MASK32)
    if (value >> 32) & _ISATAP_MASK == _ISATAP:
        # A host with an ISATAP interface tunnels to the IPv4 address in the interface ID.
        embedded = _classify_v4(IPv4Address(value & _MASK32))
        if embedded is not None:
            return Refusal(f"isatap {embedded}", True)
    for network, reason in _V6_SPECIAL:
        if address in network:
            return None if reason is None else Refusal(reason, False)
    return None


def _outside_global_unicast(address: IPv6Address, value: int) -> Refusal | None:
    if value == 0:
        return Refusal("unspecified", False)
    if value == 1:
        return Refusal("loopback", False)
    high = value >> 32
    if high == _MAPPED:
        reason = _classify_v4(IPv4Address(value & _MASK32))
        return None if reason is None else Refusal(f"ipv4-mapped {reason}", True)
    if high == 0:
        return _embedding("ipv4-compatible", value)
    if high == _TRANSLATED:
        return _embedding("ipv4-translated", value & _MASK32)
    if high == _NAT64:
        return _embedding("nat64", value & _MASK32)
    if value >> 80 == _NAT64_LOCAL:
        # Where the IPv4 address sits depends on the operator's prefix length (RFC 6052), so it
        # is taken to be non-global: only an allow naming hosts re-opens it.
        return Refusal("nat64 local-use", True)
    for network, reason in _V6_OUTSIDE:
        if address in network:
            return Refusal(reason, False)
    return Refusal("reserved", False)


@lru_cache(maxsize=4096)
def classify(address: IPAddress) -> Refusal | None:
    """Why ``address`` is not publicly routable, or None when it is."""
    if isinstance(address, IPv4Address):
        reason = _classify_v4(address)
        return None if reason is None else Refusal(reason, False)
    return _classify_v6(address)


def _exact_cidr(address: IPAddress) -> str:
    if isinstance(address, IPv4Address):
        return f"{address}/32"
    return f"{IPv6Address(int(address))}/128"  # drops any %scope


class EgressPolicy:
    """Refuses non-public upstream addresses unless an operator CIDR covers them.

    The allow list matches the address exactly as resolved, family included: an allow of
    ``127.0.0.0/8`` does not cover ``::ffff:127.0.0.1`` nor ``::1``. An allow list names
    families explicitly, so an IPv4 range never silently opens its IPv6 spellings. An IPv6
    address embedding a non-global IPv4 address is re-opened only by a CIDR longer than /96.
    """

    __slots__ = ("_allow_v4", "_allow_v6")

    def __init__(self, allow: Sequence[IPNetwork] = ()) -> None:
        self._allow_v4 = tuple(n for n in allow if isinstance(n, IPv4Network))
        self._allow_v6 = tuple(n for n in allow if isinstance(n, IPv6Network))

    def refusal_reason(self, address: IPAddress) -> str | None:
        """None when ``address`` may be contacted, else the class it was refused as."""
        refusal = classify(address)
        if refusal is None:
            return None
        reason, needs_host_allow = refusal
        allow = self._allow_v4 if isinstance(address, IPv4Address) else self._allow_v6
        for network in allow:
            if address in network and (network.prefixlen > 96 or not needs_host_allow):
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
