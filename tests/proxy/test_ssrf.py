"""SSRF corpus end to end: every spelling of a non-public address is refused before any
connection is opened, which a counting upstream on the loopback port proves.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from ipaddress import ip_address
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import KeyholeServer, server_env
from egress.spellings import embedded, spelled

from .support import Gateway, LocalUpstream, gateway

# Refused by address class: must be 403 egress_denied. "{port}" is the counting upstream's port.
ADDRESS_FORMS = [
    "http://169.254.169.254",
    "http://169.254.169.254:{port}",
    "http://10.0.0.1",
    "http://10.255.255.254:{port}",
    "http://172.16.0.1",
    "http://172.31.255.1:{port}",
    "http://192.168.1.1",
    "http://100.64.0.1",
    "http://198.18.0.1",
    "http://224.0.0.1",
    "http://255.255.255.255",
    "http://0.0.0.0:{port}",
    "http://127.0.0.1:{port}",
    "http://127.0.0.2:{port}",
    "http://[::1]:{port}",
    "http://[::]:{port}",
    "http://[::ffff:127.0.0.1]:{port}",
    "http://[::ffff:7f00:1]:{port}",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}",
    "http://[::ffff:169.254.169.254]",
    "http://[::127.0.0.1]:{port}",
    "http://[64:ff9b::127.0.0.1]:{port}",
    "http://[64:ff9b::a9fe:a9fe]",
    "http://[2002:7f00:1::]:{port}",
    "http://[fe80::1]:{port}",
    "http://[fc00::1]:{port}",
    "http://[fd00:ec2::254]",
    "http://2130706433:{port}",
    "http://0x7f000001:{port}",
    "http://0177.0.0.1:{port}",
    "http://0x7f.0.0.1:{port}",
    "http://017700000001:{port}",
    "http://127.1:{port}",
    "http://0:{port}",
    "http://localhost:{port}",
    "http://LocalHost:{port}",
    "https://127.0.0.1:{port}",
]

# What an outside review got to connect(): IPv6 forms that embed a non-global IPv4 address
# (SIIT, ::ffff:0:0:0/96) or lie outside 2000::/3.
REVIEW_FINDINGS = [
    "http://[::ffff:0:127.0.0.1]:{port}",
    "http://[::ffff:0:a9fe:a9fe]",
    "http://[::1:0:0:1]:{port}",
    "http://[0:0:0:0:0:1:7f00:1]:{port}",
]

# Base URLs that smuggle userinfo or a fragment are refused when the connection is saved.
REFUSED_AT_CREATION = [
    "http://user:pw@127.0.0.1:{port}",
    "http://evil.example@127.0.0.1:{port}",
    "http://127.0.0.1:{port}#@evil.example",
]

# Odd spellings some layer may reject as malformed instead (400 from the proxy, 422 when the
# connection is created), or that do not resolve at all here (502 "could not resolve": with no
# address there is nothing to connect to). Never 2xx, never another 5xx, never a connection.
ODD_FORMS = [
    "http://localhost.:{port}",
    "http://127.0.0.1.:{port}",
    "http://%31%32%37.0.0.1:{port}",
    "http://127.0.0.1%00.evil.example:{port}",
    "http://[::ffff:127.0.0.1%25lo]:{port}",
    "http://[fe80::1%25lo]:{port}",
    "http://127.0.0.1:{port}\\@evil.example",
    "http://127.0.0.1 :{port}",
    "http://0x7f.1:{port}",
]


def _loopback_hostnames() -> list[str]:
    """This machine's own names that resolve to loopback only (e.g. from /etc/hosts)."""
    names = []
    for name in {socket.gethostname(), "ip6-localhost", "ip6-loopback", "localhost.localdomain"}:
        try:
            infos = socket.getaddrinfo(name, None)
        except OSError:
            continue
        if infos and all(ip_address(info[4][0]).is_loopback for info in infos):
            names.append(name)
    return sorted(names)


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyholeServer]:
    """A server whose allow list is empty: loopback is as forbidden as anything else."""
    home = tmp_path_factory.mktemp("keyhole-ssrf")
    instance = KeyholeServer(home, server_env(home, KEYHOLE_EGRESS_ALLOW="")).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def strict(strict_server: KeyholeServer) -> Iterator[Gateway]:
    gw = gateway(strict_server.url, strict_server.bootstrap("org-ssrf", "s@s.test").bearer)
    yield gw
    gw.client.close()


@pytest.fixture(scope="module")
def loopback_allowed(server: KeyholeServer) -> Iterator[Gateway]:
    """The shared server (127.0.0.0/8 allowed), in an organization of this module's own, so the
    many generated connections stay out of the organizations other suites count."""
    gw = gateway(server.url, server.bootstrap("org-ssrf-embedded", "e@s.test").bearer)
    yield gw
    gw.client.close()


@pytest.fixture(scope="module")
def target() -> Iterator[LocalUpstream]:
    instance = LocalUpstream().start()
    yield instance
    instance.stop()


def _attempt(gw: Gateway, url: str) -> tuple[int, dict[str, Any]]:
    """Create the connection (validate: false) and call it; the refusing status and body."""
    created = gw.client.post(
        "/api/connections",
        json={"name": "ssrf", "type": "api", "configuration": {"url": url}, "validate": False},
    )
    if created.status_code != 200:
        return created.status_code, created.json()
    connection = created.json()["data"]["id"]
    response = gw.call(connection, method="GET", path="/latest/meta-data/iam/security-credentials/")
    return response.status_code, response.json()


@pytest.mark.parametrize("form", ADDRESS_FORMS)
def test_address_forms_are_denied_without_connecting(
    strict: Gateway, target: LocalUpstream, form: str
) -> None:
    url = form.format(port=target.port)
    before = target.accepts
    status, body = _attempt(strict, url)
    assert (status, body.get("key")) == (403, "egress_denied"), (url, body)
    assert "proxyCallId" in body["metadata"]
    assert target.accepts == before, f"{url} reached the upstream"


@pytest.mark.parametrize("form", REVIEW_FINDINGS)
def test_review_findings_are_denied_without_connecting(
    strict: Gateway, loopback_allowed: Gateway, target: LocalUpstream, form: str
) -> None:
    url = form.format(port=target.port)
    before = target.accepts
    for gw in (strict, loopback_allowed):
        status, body = _attempt(gw, url)
        assert (status, body.get("key")) == (403, "egress_denied"), (url, body)
    assert target.accepts == before, f"{url} reached the upstream"


# Loopback and this-network addresses only: a mapped form let through by mistake then lands on
# the counting upstream here instead of on another host.
_LOCAL_V4 = st.one_of(st.integers(0x7F00_0000, 0x7FFF_FFFF), st.integers(0, 0x00FF_FFFF))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(embedded(_LOCAL_V4), st.data())
def test_generated_embedded_forms_are_denied_without_connecting(
    strict: Gateway,
    loopback_allowed: Gateway,
    target: LocalUpstream,
    case: tuple[str, int, int],
    data: st.DataObject,
) -> None:
    name, _, value = case
    text = data.draw(spelled(value), label="spelling")
    url = f"http://[{text.replace('%', '%25')}]:{target.port}"
    before = target.accepts
    for gw in (strict, loopback_allowed):
        status, body = _attempt(gw, url)
        if "%" in text:  # a zone id may be refused as malformed, or not resolve
            assert status in (400, 403, 422, 502), (name, url, status, body)
            if status == 403:
                assert body["key"] == "egress_denied", (name, url, body)
        else:
            assert (status, body.get("key")) == (403, "egress_denied"), (name, url, body)
    assert target.accepts == before, f"{url} reached the upstream"


@pytest.mark.parametrize("form", REFUSED_AT_CREATION)
def test_smuggling_base_urls_are_refused_on_save(strict: Gateway, target: LocalUpstream, form: str) -> None:
    before = target.accepts
    status, body = _attempt(strict, form.format(port=target.port))
    assert (status, body.get("key")) == (422, "invalid_configuration"), body
    assert target.accepts == before


@pytest.mark.parametrize("form", ODD_FORMS)
def test_odd_spellings_never_connect(strict: Gateway, target: LocalUpstream, form: str) -> None:
    url = form.format(port=target.port)
    before = target.accepts
    status, body = _attempt(strict, url)
    assert status in (400, 403, 422, 502), (url, status, body)
    if status == 403:
        assert body["key"] == "egress_denied"
    if status == 502:
        assert body["key"] == "upstream_unreachable"
        assert body["message"].startswith("could not resolve"), body
    assert target.accepts == before, f"{url} reached the upstream"


def test_machine_hostnames_resolving_to_loopback_are_denied(strict: Gateway, target: LocalUpstream) -> None:
    names = _loopback_hostnames()
    before = target.accepts
    for name in names:
        status, body = _attempt(strict, f"http://{name}:{target.port}")
        assert (status, body.get("key")) == (403, "egress_denied"), (name, body)
    assert target.accepts == before


# With 127.0.0.0/8 allowed (the session server), only exactly that range opens: other
# classes, and IPv6 spellings of loopback, stay refused.
STILL_DENIED = [
    "http://169.254.169.254",
    "http://10.0.0.1",
    "http://172.16.0.1",
    "http://192.168.1.1",
    "http://100.64.0.1",
    "http://0.0.0.0:{port}",
    "http://[::1]:{port}",
    "http://[::]:{port}",
    "http://[::ffff:127.0.0.1]:{port}",
    "http://[::127.0.0.1]:{port}",
    "http://[64:ff9b::127.0.0.1]:{port}",
    "http://[2002:7f00:1::]:{port}",
]


@pytest.mark.parametrize("form", STILL_DENIED)
def test_loopback_allow_list_opens_nothing_else(gw_a: Gateway, target: LocalUpstream, form: str) -> None:
    url = form.format(port=target.port)
    before = target.accepts
    status, body = _attempt(gw_a, url)
    assert (status, body.get("key")) == (403, "egress_denied"), (url, body)
    assert target.accepts == before, f"{url} reached the upstream"


def test_allowed_loopback_does_connect(gw_a: Gateway, target: LocalUpstream) -> None:
    """The control: the same upstream is reachable where the allow list covers it."""
    before = target.accepts
    connection = gw_a.create(target.url())
    assert gw_a.ok(connection, method="GET", path="/control")["status"] == 200
    assert target.accepts > before
