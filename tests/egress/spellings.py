"""Hypothesis strategies for the address policy: non-global IPv4 addresses, the IPv6 forms that
embed an IPv4 address, and the many ways to write one IPv6 address.

The tables here are written out independently of ``keyhole.egress.policy``, so the tests check
the policy against the registries rather than against itself.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from hypothesis import strategies as st

MASK32 = 0xFFFFFFFF

# IANA IPv4 special-purpose ranges that are not globally reachable, plus multicast and the
# deprecated 6to4 relay anycast.
NON_GLOBAL_V4 = tuple(
    IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)

# 11.0.0.0 to 99.255.255.255 holds no special-purpose range.
GLOBAL_V4_RANGE = (int(IPv4Address("11.0.0.0")), int(IPv4Address("99.255.255.255")))


def within(network: IPv4Network | IPv6Network) -> st.SearchStrategy[int]:
    return st.integers(int(network.network_address), int(network.broadcast_address))


non_global_v4 = st.sampled_from(NON_GLOBAL_V4).flatmap(within)
global_v4 = st.integers(*GLOBAL_V4_RANGE)
any_v4 = st.integers(0, MASK32)
# Filler for the bits of an embedding form that do not hold the IPv4 address.
filler = st.integers(0, (1 << 128) - 1)


def _nat64_local(prefix_length: int) -> Callable[[int, int], int]:
    """RFC 6052 §2.2: the IPv4 address after a prefix of this length, skipping bits 64-71."""

    def embed(v4: int, rest: int) -> int:
        prefix = 0x0064_FF9B_0001 << 80 | (rest >> 48) & ((1 << 80) - 1) & ~((1 << (128 - prefix_length)) - 1)
        if prefix_length == 96:
            return prefix | v4
        left = 64 - prefix_length  # bits of the address before the u octet
        high, low = v4 >> (32 - left), v4 & ((1 << (32 - left)) - 1)
        suffix_bits = 56 - (32 - left)
        return prefix | high << 64 | low << suffix_bits | rest & ((1 << suffix_bits) - 1)

    return embed


def _teredo(server: int, client: int, rest: int) -> int:
    flags_and_port = rest & 0xFFFF_FFFF
    return 0x2001_0000 << 96 | server << 64 | flags_and_port << 32 | (~client & MASK32)


def _isatap(v4: int, rest: int) -> int:
    """An ISATAP interface ID (0000:5efe or 0200:5efe, u/g bits as drawn) in a global /64."""
    prefix = 0x2600 << 112 | ((rest >> 64) & ((1 << 48) - 1)) << 64
    return prefix | (0x5EFE | (rest & 0x0300) << 16) << 32 | v4


# Each form: (name, reached through a translator or relay the gateway cannot see,
# embed(v4, filler) -> int).
EMBEDDINGS: tuple[tuple[str, bool, Callable[[int, int], int]], ...] = (
    ("ipv4-mapped", False, lambda v4, _: 0xFFFF << 32 | v4),
    ("ipv4-compatible", True, lambda v4, _: v4),
    ("ipv4-translated (SIIT)", True, lambda v4, _: 0xFFFF << 48 | v4),
    ("nat64", True, lambda v4, _: 0x0064_FF9B << 96 | v4),
    ("nat64 local-use /48", True, _nat64_local(48)),
    ("nat64 local-use /56", True, _nat64_local(56)),
    ("nat64 local-use /64", True, _nat64_local(64)),
    ("nat64 local-use /96", True, _nat64_local(96)),
    ("6to4", True, lambda v4, rest: 0x2002 << 112 | v4 << 80 | rest & ((1 << 80) - 1)),
    ("teredo client", True, lambda v4, rest: _teredo(int(IPv4Address("65.54.227.120")), v4, rest)),
    ("teredo server", True, lambda v4, rest: _teredo(v4, int(IPv4Address("8.8.4.4")), rest)),
    ("isatap", False, _isatap),
)

# The prefix each form lives in, as an operator would allow a translator.
TRANSLATOR_PREFIXES = tuple(
    IPv6Network(cidr)
    for cidr in (
        "::ffff:0:0/96",
        "::/96",
        "::ffff:0:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "2001::/32",
        "::/0",
    )
)


@st.composite
def embedded(draw: st.DrawFn, v4: st.SearchStrategy[int]) -> tuple[str, int, int]:
    """(form name, embedded IPv4 address, the IPv6 address) for a drawn form."""
    name, _, embed = draw(st.sampled_from(EMBEDDINGS))
    address = draw(v4)
    return name, address, embed(address, draw(filler))


@st.composite
def spelled(draw: st.DrawFn, value: int, *, zone: bool = True) -> str:
    """One legal textual form of the IPv6 address ``value``: any zero run compressed (or none),
    hextets padded with leading zeros, a dotted-quad tail, upper case, and a zone id."""
    groups = [(value >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    dotted = draw(st.booleans())
    head = groups[:6] if dotted else groups
    texts = [f"{group:0{draw(st.integers(len(f'{group:x}'), 4))}x}" for group in head]
    runs = [
        (start, end)
        for start in range(len(head))
        for end in range(start + 1, len(head) + 1)
        if not any(head[start:end])
    ]
    compress = draw(st.booleans())
    if runs and compress:
        start, end = draw(st.sampled_from(runs))
        text = ":".join(texts[:start]) + "::" + ":".join(texts[end:])
    else:
        text = ":".join(texts)
    if dotted:
        tail = str(IPv4Address(value & MASK32))
        text = text + tail if text.endswith("::") else f"{text}:{tail}"
    if draw(st.booleans()):
        text = text.upper()
    if zone and draw(st.booleans()):
        text += "%eth0"
    assert int(IPv6Address(text.split("%")[0])) == value, text
    return text


def outside_global_unicast() -> st.SearchStrategy[int]:
    """IPv6 addresses outside 2000::/3, weighted towards the small ones under ::/8."""
    anywhere = st.integers(0, (1 << 128) - 1).filter(lambda value: value >> 125 != 1)
    low = st.integers(0, (1 << 120) - 1)
    return st.one_of(anywhere, low)
