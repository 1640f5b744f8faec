from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyhole.egress import EgressPolicy
from keyhole.errors import EgressDenied

from .spellings import (
    EMBEDDINGS,
    TRANSLATOR_PREFIXES,
    any_v4,
    embedded,
    global_v4,
    non_global_v4,
    outside_global_unicast,
    spelled,
)

LOOPBACK_V4 = IPv4Network("127.0.0.0/8")

SSRF_CORPUS = [
    ("169.254.169.254", "link-local"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "cgnat"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this-network"),
    ("127.0.0.1", "loopback"),
    ("198.18.0.1", "benchmarking"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("224.0.0.1", "multicast"),
    ("192.0.2.1", "documentation"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "ipv4-mapped loopback"),
    ("::ffff:10.0.0.1", "ipv4-mapped private"),
    ("::ffff:169.254.169.254", "ipv4-mapped link-local"),
    ("::127.0.0.1", "ipv4-compatible loopback"),
    ("64:ff9b::a00:1", "nat64 private"),
    ("64:ff9b:1::808:808", "nat64 local-use"),
    ("2002:a00:1::1", "6to4 private"),
    ("2002:7f00:1::1", "6to4 loopback"),
    ("2001::1", "teredo reserved"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo documentation"),
    ("fe80::1", "link-local"),
    ("fe80::1%1", "link-local"),
    ("fd00::1", "unique-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
]


@pytest.mark.parametrize(("address", "reason"), SSRF_CORPUS)
def test_ssrf_corpus_is_refused(address: str, reason: str) -> None:
    assert EgressPolicy().refusal_reason(ip_address(address)) == reason


@pytest.mark.parametrize("address", [a for a, _ in SSRF_CORPUS if a not in ("127.0.0.1",)])
def test_ssrf_corpus_stays_refused_with_loopback_allowed(address: str) -> None:
    with pytest.raises(EgressDenied):
        EgressPolicy([LOOPBACK_V4]).check("api.example", ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::1111",
        "2a00:1450:4001:80e::200e",
        "::ffff:8.8.8.8",
        "2001:3::1",
        "2001:4:112::1",
        "2001:20::1",
        "2001:30::1",
        "2620:4f:8000::1",
        "2600::200:5efe:808:808",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    policy = EgressPolicy()
    assert policy.refusal_reason(ip_address(address)) is None
    policy.check("api.example", ip_address(address))


def test_allow_list_opens_exactly_the_named_family() -> None:
    policy = EgressPolicy([LOOPBACK_V4, IPv4Network("10.1.0.0/16"), IPv6Network("fd00:1::/32")])
    assert policy.refusal_reason(ip_address("127.0.0.1")) is None
    assert policy.refusal_reason(ip_address("10.1.2.3")) is None
    assert policy.refusal_reason(ip_address("fd00:1::5")) is None
    assert policy.refusal_reason(ip_address("10.2.0.1")) == "private"
    assert policy.refusal_reason(ip_address("::ffff:127.0.0.1")) == "ipv4-mapped loopback"
    assert policy.refusal_reason(ip_address("::1")) == "loopback"
    assert policy.refusal_reason(ip_address("0.0.0.0")) == "unspecified"


def test_mapped_form_needs_its_own_allow() -> None:
    policy = EgressPolicy([IPv6Network("::ffff:127.0.0.0/104")])
    assert policy.refusal_reason(ip_address("::ffff:127.0.0.1")) is None
    assert policy.refusal_reason(ip_address("127.0.0.1")) == "loopback"


def test_unspecified_only_with_explicit_allow() -> None:
    assert EgressPolicy([IPv4Network("0.0.0.0/32")]).refusal_reason(ip_address("0.0.0.0")) is None


def test_refusal_message_names_host_address_and_class() -> None:
    with pytest.raises(EgressDenied) as caught:
        EgressPolicy().check("api.example", ip_address("10.0.0.5"))
    error = caught.value
    assert error.status == 403
    assert error.key == "egress_denied"
    assert error.message == (
        "refused: api.example resolves to 10.0.0.5 (private); "
        "add a CIDR such as 10.0.0.5/32 to KEYHOLE_EGRESS_ALLOW to allow it"
    )
    assert error.metadata == {"host": "api.example", "address": "10.0.0.5", "reason": "private"}


def test_refusal_message_for_literal_and_scoped_v6() -> None:
    with pytest.raises(EgressDenied) as caught:
        EgressPolicy().check("fe80::1%1", ip_address("fe80::1%1"))
    assert caught.value.message == (
        "refused: fe80::1%1 (link-local) is not a public address; "
        "add a CIDR such as fe80::1/128 to KEYHOLE_EGRESS_ALLOW to allow it"
    )


# -- IPv6 forms that embed an IPv4 address, and IPv6 outside global unicast -----------------------

# What an outside review got to connect(): each embeds a non-global IPv4 address (SIIT) or lies
# outside 2000::/3.
REVIEW_FINDINGS = [
    ("::ffff:0:127.0.0.1", "ipv4-translated loopback"),
    ("::ffff:0:a9fe:a9fe", "ipv4-translated link-local"),
    ("::1:0:0:1", "reserved"),
    ("0:0:0:0:0:1:7f00:1", "reserved"),
]


@pytest.mark.parametrize(("address", "reason"), REVIEW_FINDINGS)
def test_review_findings_are_refused(address: str, reason: str) -> None:
    assert EgressPolicy().refusal_reason(ip_address(address)) == reason
    assert EgressPolicy([LOOPBACK_V4]).refusal_reason(ip_address(address)) == reason


@given(embedded(non_global_v4), st.data())
def test_embedded_non_global_ipv4_is_refused_in_every_form_and_spelling(
    case: tuple[str, int, int], data: st.DataObject
) -> None:
    name, _, value = case
    text = data.draw(spelled(value), label="spelling")
    address = ip_address(text)
    assert isinstance(address, IPv6Address)
    for policy in (EgressPolicy(), EgressPolicy([IPv4Network("0.0.0.0/0")])):
        assert policy.refusal_reason(address) is not None, (name, text)
        with pytest.raises(EgressDenied):
            policy.check(text, address)


@given(embedded(non_global_v4), st.sampled_from(TRANSLATOR_PREFIXES))
def test_allowing_a_translator_prefix_keeps_non_global_ipv4_behind_it_closed(
    case: tuple[str, int, int], prefix: IPv6Network
) -> None:
    name, _, value = case
    address = IPv6Address(value)
    assert EgressPolicy([prefix]).refusal_reason(address) is not None, (name, str(address), prefix)


@given(embedded(non_global_v4), st.integers(97, 128))
def test_an_allow_naming_hosts_reopens_an_embedded_non_global_ipv4(
    case: tuple[str, int, int], prefix_length: int
) -> None:
    _, _, value = case
    allow = IPv6Network((value, prefix_length), strict=False)
    assert EgressPolicy([allow]).refusal_reason(IPv6Address(value)) is None


@given(embedded(global_v4))
def test_embedded_global_ipv4_passes_only_where_no_translator_is_involved(case: tuple[str, int, int]) -> None:
    """IPv4-mapped is the kernel's own spelling of an IPv4 destination; the other forms reach it
    through a translator or relay the gateway cannot see, so they need the operator's allow. A
    local-use NAT64 address does not say where its IPv4 address sits, so only an allow naming
    hosts (longer than /96) opens it."""
    name, _, value = case
    address = IPv6Address(value)
    translated = {form: through for form, through, _ in EMBEDDINGS}[name]
    assert (EgressPolicy().refusal_reason(address) is not None) is translated, (name, str(address))
    if not translated:
        return
    prefixes = [prefix for prefix in TRANSLATOR_PREFIXES if address in prefix and prefix.prefixlen]
    assert prefixes, str(address)
    local_use = name.startswith("nat64 local-use")
    for prefix in prefixes:
        reopened = EgressPolicy([prefix]).refusal_reason(address) is None
        assert reopened is not local_use, (name, str(address), prefix)
    assert EgressPolicy([IPv6Network((value, 97), strict=False)]).refusal_reason(address) is None


@given(outside_global_unicast(), st.data())
def test_ipv6_outside_global_unicast_is_refused(value: int, data: st.DataObject) -> None:
    text = data.draw(spelled(value), label="spelling")
    address = ip_address(text)
    assert EgressPolicy().refusal_reason(address) is not None, text
    assert EgressPolicy([IPv4Network("0.0.0.0/0")]).refusal_reason(address) is not None, text
    assert EgressPolicy([IPv6Network("2000::/3")]).refusal_reason(address) is not None, text


def test_nat64_operator_allows_the_translator_not_what_is_behind_it() -> None:
    policy = EgressPolicy([IPv6Network("64:ff9b::/96")])
    assert EgressPolicy().refusal_reason(ip_address("64:ff9b::8.8.8.8")) == "nat64"
    assert policy.refusal_reason(ip_address("64:ff9b::8.8.8.8")) is None
    assert policy.refusal_reason(ip_address("64:ff9b::169.254.169.254")) == "nat64 link-local"
    named = EgressPolicy([IPv6Network("64:ff9b::/96"), IPv6Network("64:ff9b::a01:0/112")])
    assert named.refusal_reason(ip_address("64:ff9b::10.1.2.3")) is None
    assert named.refusal_reason(ip_address("64:ff9b::10.2.0.1")) == "nat64 private"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("64:ff9b::8.8.8.8", "nat64"),
        ("2002:808:808::1", "6to4"),
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "teredo"),
        ("::ffff:0:8.8.8.8", "ipv4-translated"),
        ("::8.8.8.8", "ipv4-compatible"),
        ("64:ff9b:1::808:808", "nat64 local-use"),
        ("2002:a9fe:a9fe::1", "6to4 link-local"),
        ("2001:0:a9fe:a9fe::1", "teredo reserved"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "teredo loopback"),
        ("2001:0:a00:1:8000:63bf:f7f7:f7f7", "teredo private"),
        ("2600::5efe:a9fe:a9fe", "isatap link-local"),
        ("2600::200:5efe:7f00:1", "isatap loopback"),
        ("2001:1::1", "ietf-protocol"),
        ("2001:2::1", "benchmarking"),
        ("2001:10::1", "ietf-protocol"),
        ("3fff::1", "documentation"),
        ("100::1", "discard"),
        ("5f00::1", "reserved"),
        ("4000::1", "reserved"),
        ("fec0::1", "site-local"),
        ("192.88.99.1", "6to4-relay"),
        ("192.0.0.9", "ietf-protocol"),
    ],
)
def test_special_purpose_ranges_are_named(address: str, reason: str) -> None:
    assert EgressPolicy().refusal_reason(ip_address(address)) == reason


@given(st.integers(int(IPv6Address("2400::")), int(IPv6Address("27ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))))
def test_global_unicast_passes(value: int) -> None:
    assert EgressPolicy().refusal_reason(IPv6Address(value)) is None


@given(global_v4)
def test_global_ipv4_passes_as_itself_and_mapped(value: int) -> None:
    policy = EgressPolicy()
    assert policy.refusal_reason(IPv4Address(value)) is None
    assert policy.refusal_reason(IPv6Address(0xFFFF << 32 | value)) is None


# Refused IPv6 with no embedded IPv4: 100::/8, 4000::/2 and 8000::/1 (unique-local, link-local,
# multicast and the reserved rest). An allow of /8 or longer stays inside one of them.
_PLAIN_REFUSED_V6 = st.one_of(
    st.integers(0x01 << 120, (0x02 << 120) - 1), st.integers(1 << 126, (1 << 128) - 1)
)


@given(_PLAIN_REFUSED_V6, st.integers(8, 128), st.integers(0, (1 << 128) - 1), _PLAIN_REFUSED_V6)
def test_an_allow_reopens_exactly_what_it_covers_v6(
    value: int, prefix_length: int, offset: int, other: int
) -> None:
    allow = IPv6Network((value, prefix_length), strict=False)
    policy = EgressPolicy([allow])
    inside = IPv6Address(int(allow.network_address) | offset & int(allow.hostmask))
    assert policy.refusal_reason(inside) is None
    assert (policy.refusal_reason(IPv6Address(other)) is None) == (IPv6Address(other) in allow)
    # Families stay separate: the IPv4 address in the low bits is not opened by an IPv6 allow.
    assert policy.refusal_reason(IPv4Address(value & 0xFFFFFFFF)) == EgressPolicy().refusal_reason(
        IPv4Address(value & 0xFFFFFFFF)
    )


@given(non_global_v4, st.integers(0, 32), any_v4)
def test_an_allow_reopens_exactly_what_it_covers_v4(value: int, prefix_length: int, other: int) -> None:
    allow = IPv4Network((value, prefix_length), strict=False)
    policy = EgressPolicy([allow])
    assert policy.refusal_reason(IPv4Address(value)) is None
    expected = None if IPv4Address(other) in allow else EgressPolicy().refusal_reason(IPv4Address(other))
    assert policy.refusal_reason(IPv4Address(other)) == expected
    # Families stay separate: no IPv6 spelling of the address is opened.
    for _, _, embed in EMBEDDINGS:
        spelled_v6 = IPv6Address(embed(value, 0))
        assert policy.refusal_reason(spelled_v6) == EgressPolicy().refusal_reason(spelled_v6)
