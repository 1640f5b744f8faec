from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address

import pytest

from keyhole.egress import EgressPolicy
from keyhole.errors import EgressDenied

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
    ("2001::1", "teredo"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"),
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
        "2002:808:808::1",
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
