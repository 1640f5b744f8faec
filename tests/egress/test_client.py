from __future__ import annotations

import socket
from ipaddress import IPv4Network, IPv6Network

import pytest
import yarl

from keyhole.egress import EgressPolicy, read_capped
from keyhole.egress.client import EgressClient
from keyhole.egress.resolver import ResolvedAddress
from keyhole.errors import EgressDenied, InvalidRequest, UpstreamTimeout, UpstreamUnreachable

from .conftest import LOOPBACK_V4, MakeClient, ResetUpstream, Upstream

MIB = 1024 * 1024


async def get(client: EgressClient, url: yarl.URL, timeout_ms: int = 5000) -> tuple[int, bytes]:
    async with client.request("GET", url, headers=None, data=None, timeout_ms=timeout_ms) as response:
        body, _ = await read_capped(response, MIB)
        return response.status, body


def localhost_resolves_to_v6_too(port: int) -> bool:
    infos = socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)
    return any(info[0] == socket.AF_INET6 for info in infos)


async def test_allowed_loopback_request(upstream: Upstream, make_client: MakeClient) -> None:
    assert await get(make_client(LOOPBACK_V4), upstream.url()) == (200, b"ok")
    assert upstream.requests == ["/"]


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "localhost", "127.0.0.1"]
)
async def test_loopback_spellings_refused_without_connecting(
    host: str, upstream: Upstream, make_client: MakeClient
) -> None:
    with pytest.raises(EgressDenied, match=r"\(loopback\)"):
        await get(make_client(), upstream.url(host=host))
    assert upstream.connections == 0


@pytest.mark.parametrize("host", ["[::1]", "0.0.0.0", "[::ffff:127.0.0.1]", "[::]"])
async def test_refused_even_with_loopback_allowed(
    host: str, upstream: Upstream, make_client: MakeClient
) -> None:
    with pytest.raises(EgressDenied):
        await get(make_client(LOOPBACK_V4), upstream.url(host=host))
    assert upstream.connections == 0


async def test_localhost_with_loopback_allowed(upstream: Upstream, make_client: MakeClient) -> None:
    client = make_client(LOOPBACK_V4)
    if localhost_resolves_to_v6_too(upstream.port):
        with pytest.raises(EgressDenied, match="::1"):
            await get(client, upstream.url(host="localhost"))
        assert upstream.connections == 0
    else:
        assert await get(client, upstream.url(host="localhost")) == (200, b"ok")


async def test_resolved_once_for_check_and_connect(
    upstream: Upstream, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyhole.egress.resolver import CheckingResolver

    lookups: list[str] = []
    original = CheckingResolver._getaddrinfo

    async def counting(self: CheckingResolver, host: str, port: int, family: int):  # type: ignore[no-untyped-def]
        lookups.append(host)
        return await original(self, host, port, family)

    monkeypatch.setattr(CheckingResolver, "_getaddrinfo", counting)
    client = make_client(LOOPBACK_V4)
    for _ in range(3):
        assert await get(client, upstream.url(host="0x7f000001")) == (200, b"ok")
    assert lookups == ["0x7f000001"]


async def test_non_canonical_literal_rejected_when_allowed(
    upstream: Upstream, make_client: MakeClient
) -> None:
    with pytest.raises(InvalidRequest):
        await get(make_client(LOOPBACK_V4), upstream.url(host="2130706433"))
    assert upstream.connections == 0


async def test_redirect_is_returned_not_followed(upstream: Upstream, make_client: MakeClient) -> None:
    client = make_client(LOOPBACK_V4)
    async with client.request(
        "GET", upstream.url("/redirect"), headers=None, data=None, timeout_ms=5000
    ) as response:
        assert response.status == 302
        assert response.headers["Location"] == f"http://127.0.0.1:{upstream.port}/"
    assert upstream.requests == ["/redirect"]


async def test_timeout_waiting_for_headers(upstream: Upstream, make_client: MakeClient) -> None:
    with pytest.raises(UpstreamTimeout, match=f"127.0.0.1:{upstream.port}"):
        await get(make_client(LOOPBACK_V4), upstream.url("/slow"), timeout_ms=200)


async def test_timeout_while_reading_body(upstream: Upstream, make_client: MakeClient) -> None:
    client = make_client(LOOPBACK_V4)
    async with client.request(
        "GET", upstream.url("/slow-body"), headers=None, data=None, timeout_ms=300
    ) as response:
        assert response.status == 200
        with pytest.raises(UpstreamTimeout):
            await read_capped(response, MIB)


async def test_connection_refused(closed_port: int, make_client: MakeClient) -> None:
    url = yarl.URL(f"http://user:hunter2@127.0.0.1:{closed_port}/v1?api_key=s3cret")
    with pytest.raises(UpstreamUnreachable) as caught:
        await get(make_client(LOOPBACK_V4), url)
    message = caught.value.message
    assert message == f"could not connect to 127.0.0.1:{closed_port}: connection refused"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_dns_failure(make_client: MakeClient) -> None:
    with pytest.raises(UpstreamUnreachable, match=r"could not resolve nonexistent\.invalid"):
        await get(make_client(), yarl.URL("http://nonexistent.invalid/"))


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "file:///etc/passwd", "ws://127.0.0.1/", "/relative"])
async def test_only_http_schemes(url: str, make_client: MakeClient) -> None:
    with pytest.raises(InvalidRequest):
        await get(make_client(LOOPBACK_V4), yarl.URL(url))


async def test_refusal_message_has_no_query_or_credentials(make_client: MakeClient) -> None:
    with pytest.raises(EgressDenied) as caught:
        await get(make_client(), yarl.URL("http://user:hunter2@10.0.0.5/x?token=s3cret"))
    assert caught.value.message.startswith("refused: 10.0.0.5 (private)")
    assert "s3cret" not in caught.value.message
    assert "hunter2" not in caught.value.message


async def test_timeout_ms_is_validated(make_client: MakeClient) -> None:
    with pytest.raises(InvalidRequest):
        make_client().request("GET", yarl.URL("http://8.8.8.8/"), headers=None, data=None, timeout_ms=0)


async def test_read_capped_truncates_streamed_body(upstream: Upstream, make_client: MakeClient) -> None:
    client = make_client(LOOPBACK_V4)
    async with client.request("GET", upstream.url("/stream"), headers=None, data=None, timeout_ms=5000) as r:
        body, truncated = await read_capped(r, MIB)
    assert len(body) == MIB
    assert truncated


@pytest.mark.parametrize("size", [0, 1000, MIB])
async def test_read_capped_returns_whole_body_within_cap(
    size: int, upstream: Upstream, make_client: MakeClient
) -> None:
    client = make_client(LOOPBACK_V4)
    url = upstream.url("/stream").with_query(size=size)
    async with client.request("GET", url, headers=None, data=None, timeout_ms=5000) as response:
        body, truncated = await read_capped(response, MIB)
    assert body == b"a" * size
    assert not truncated


async def test_truncated_connection_is_not_reused(upstream: Upstream, make_client: MakeClient) -> None:
    client = make_client(LOOPBACK_V4)
    async with client.request("GET", upstream.url("/stream"), headers=None, data=None, timeout_ms=5000) as r:
        await read_capped(r, 1000)
    assert await get(client, upstream.url()) == (200, b"ok")
    assert upstream.connections == 2
    assert await get(client, upstream.url()) == (200, b"ok")
    assert upstream.connections == 2  # the clean one is kept alive


async def test_reset_mid_body(reset_upstream: ResetUpstream, make_client: MakeClient) -> None:
    client = make_client(LOOPBACK_V4)
    url = yarl.URL(f"http://127.0.0.1:{reset_upstream.port}/")
    async with client.request("GET", url, headers=None, data=None, timeout_ms=5000) as response:
        assert response.status == 200
        reset_upstream.go.set()
        with pytest.raises(UpstreamUnreachable, match=f"127.0.0.1:{reset_upstream.port}"):
            await read_capped(response, 10 * MIB)


async def test_upstream_cookies_are_never_stored(upstream: Upstream, make_client: MakeClient) -> None:
    client = make_client(LOOPBACK_V4)
    assert await get(client, upstream.url("/set-cookie")) == (200, b"set")
    assert await get(client, upstream.url("/echo-cookie")) == (200, b"")


async def test_proxy_environment_is_ignored(
    upstream: Upstream, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    assert await get(make_client(LOOPBACK_V4), upstream.url()) == (200, b"ok")


async def test_addresses_checked_without_a_request(make_client: MakeClient) -> None:
    client = make_client(IPv4Network("10.0.0.0/8"))
    await client.addresses(yarl.URL("http://10.1.2.3/"))
    with pytest.raises(EgressDenied):
        await client.addresses(yarl.URL("http://192.168.0.1/"))
    policy_client = EgressClient(EgressPolicy())
    with pytest.raises(EgressDenied):
        await policy_client.addresses(yarl.URL("https://169.254.169.254/latest/meta-data/"))
    await policy_client.close()


async def test_a_literal_is_connected_to_as_checked(make_client: MakeClient) -> None:
    client = make_client(IPv6Network("::ffff:127.0.0.0/104"))
    answer = await client.addresses(yarl.URL("http://[0000:0000:0000:0000:0000:FFFF:7F00:0001]:8080/"))
    assert answer == [ResolvedAddress("::ffff:7f00:1", 8080, socket.AF_INET6)]
