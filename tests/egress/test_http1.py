"""The HTTP/1.1 client against raw servers that write exact bytes: framing, codings, reuse, faults."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import yarl

from keyhole.egress import EgressLimits, EgressPolicy, read_capped
from keyhole.egress.client import EgressClient
from keyhole.errors import InvalidRequest, UpstreamTimeout, UpstreamUnreachable

from .conftest import LOOPBACK_V4, MakeClient

MIB = 1024 * 1024
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawUpstream"], Awaitable[None]]


@dataclass
class RawUpstream:
    port: int = 0
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)

    def url(self, path: str = "/") -> yarl.URL:
        return yarl.URL(f"http://127.0.0.1:{self.port}{path}")

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        return head


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[RawUpstream]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> RawUpstream:
        state = RawUpstream()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            state.connections += 1
            try:
                await handler(reader, writer, state)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        servers.append(server)
        state.port = server.sockets[0].getsockname()[1]
        return state

    yield start
    for server in servers:
        server.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "".join(f"{line}\r\n" for line in headers)
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


def keep_answering(response: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawUpstream) -> None:
        while True:
            await state.read_request(reader)
            writer.write(response)
            await writer.drain()

    return handler


async def fetch(
    client: EgressClient, url: yarl.URL, method: str = "GET", cap: int = MIB, **kwargs: object
) -> tuple[int, bytes, bool]:
    headers = kwargs.pop("headers", None)
    data = kwargs.pop("data", None)
    async with client.request(
        method,
        url,
        headers=headers,  # type: ignore[arg-type]
        data=data,  # type: ignore[arg-type]
        timeout_ms=3000,
    ) as response:
        body, truncated = await read_capped(response, cap)
        return response.status, body, truncated


@pytest.fixture
def client(make_client: MakeClient) -> EgressClient:
    return make_client(LOOPBACK_V4)


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
        ("GZIP", gzip.compress),
    ],
)
async def test_single_known_coding_is_decoded(
    coding: str,
    encode: Callable[[bytes], bytes],
    serve: Callable[[Handler], Awaitable[RawUpstream]],
    client: EgressClient,
) -> None:
    plain = b'{"token": "abc"}' * 1000
    upstream = await serve(keep_answering(answer(encode(plain), f"Content-Encoding: {coding}")))
    assert await fetch(client, upstream.url()) == (200, plain, False)
    assert b"accept-encoding: gzip, deflate" in upstream.heads[0].lower()


async def test_unknown_coding_is_left_encoded(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    upstream = await serve(keep_answering(answer(b"\x8b\x00brotli", "Content-Encoding: br")))
    assert await fetch(client, upstream.url()) == (200, b"\x8b\x00brotli", False)


async def test_decompression_bomb_stops_at_the_cap(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    bomb = gzip.compress(b"\0" * (200 * MIB), compresslevel=9)  # about 200 KB on the wire
    upstream = await serve(keep_answering(answer(bomb, "Content-Encoding: gzip")))
    status, body, truncated = await fetch(client, upstream.url(), cap=MIB)
    assert (status, len(body), truncated) == (200, MIB, True)


async def test_corrupt_gzip_is_a_502(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    upstream = await serve(keep_answering(answer(b"not gzip at all", "Content-Encoding: gzip")))
    with pytest.raises(UpstreamUnreachable, match="cut off or malformed"):
        await fetch(client, upstream.url())


async def test_chunked_body_is_reassembled(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    upstream = await serve(keep_answering(chunked))
    for _ in range(2):
        assert await fetch(client, upstream.url()) == (200, b"hello world", False)
    assert upstream.connections == 1


async def test_body_delimited_by_close_is_read_whole(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    async def until_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawUpstream
    ) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\npart one, ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"part two")

    upstream = await serve(until_close)
    assert await fetch(client, upstream.url()) == (200, b"part one, part two", False)
    assert await fetch(client, upstream.url()) == (200, b"part one, part two", False)
    assert upstream.connections == 2


async def test_head_answer_has_no_body_and_its_connection_is_not_reused(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    async def head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawUpstream) -> None:
        while True:
            await state.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")

    upstream = await serve(head)
    assert await fetch(client, upstream.url(), method="HEAD") == (200, b"", False)
    assert await fetch(client, upstream.url(), method="HEAD") == (200, b"", False)
    assert upstream.connections == 2


async def test_interim_answers_are_skipped(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    upstream = await serve(
        keep_answering(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + answer(b"final"))
    )
    async with client.request("GET", upstream.url(), headers=None, data=None, timeout_ms=3000) as response:
        assert response.status == 200
        assert "Link" not in response.headers
        assert await read_capped(response, MIB) == (b"final", False)


def closes_after_each_answer(response: bytes) -> Handler:
    """Answers keep-alive style, then closes: the next request meets a dead pooled connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawUpstream) -> None:
        await state.read_request(reader)
        writer.write(response)
        await writer.drain()

    return handler


async def test_idempotent_request_on_a_stale_connection_is_sent_again(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = await serve(closes_after_each_answer(answer(b"ok")))
    assert await fetch(client, upstream.url()) == (200, b"ok", False)
    # The pool only learns of the close from the event loop; take the connection before it does.
    from keyhole.egress.http1 import Connection

    monkeypatch.setattr(Connection, "connection_lost", _lost_but_unnoticed(Connection.connection_lost))
    assert await fetch(client, upstream.url()) == (200, b"ok", False)
    assert upstream.connections == 2


async def test_post_on_a_stale_connection_is_not_sent_again(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = await serve(closes_after_each_answer(answer(b"ok")))
    assert await fetch(client, upstream.url(), method="POST", data=b"{}") == (200, b"ok", False)
    from keyhole.egress.http1 import Connection

    monkeypatch.setattr(Connection, "connection_lost", _lost_but_unnoticed(Connection.connection_lost))
    with pytest.raises(UpstreamUnreachable, match="closed the connection"):
        await fetch(client, upstream.url(), method="POST", data=b"{}")
    assert len(upstream.heads) == 1


def _lost_but_unnoticed(original: Callable[..., None]) -> Callable[..., None]:
    """connection_lost that leaves an idle connection looking open, as in the race it models."""

    def lost(self: object, exc: Exception | None) -> None:
        if getattr(self, "_active", False):
            original(self, exc)

    return lost


async def test_invalid_answer_is_a_502(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    upstream = await serve(keep_answering(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
    with pytest.raises(UpstreamUnreachable, match="sent an invalid HTTP response"):
        await fetch(client, upstream.url())


async def test_oversized_header_block_is_a_502(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    upstream = await serve(keep_answering(answer(b"x", *(f"X-Pad-{i}: {'y' * 1000}" for i in range(80)))))
    with pytest.raises(UpstreamUnreachable, match="sent an invalid HTTP response"):
        await fetch(client, upstream.url())


async def test_truncated_fixed_length_body_is_a_502(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    upstream = await serve(closes_after_each_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"))
    with pytest.raises(UpstreamUnreachable, match="closed the connection before the response was complete"):
        await fetch(client, upstream.url())


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b"])
async def test_header_injection_is_refused_before_connecting(
    value: str, serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    upstream = await serve(keep_answering(answer(b"ok")))
    with pytest.raises(InvalidRequest, match="CR, LF or NUL"):
        await fetch(client, upstream.url(), headers={"X-Value": value})
    with pytest.raises(InvalidRequest):
        await fetch(client, upstream.url(), headers={value: "x"})
    assert upstream.connections == 0


async def test_framing_headers_come_from_the_client_only(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    upstream = await serve(keep_answering(answer(b"ok")))
    headers = {
        "Host": "evil.example",
        "Content-Length": "999",
        "Transfer-Encoding": "chunked",
        "User-Agent": "mine",
    }
    assert await fetch(client, upstream.url("/p?q=1"), method="POST", headers=headers, data=b"abc") == (
        200,
        b"ok",
        False,
    )
    assert await fetch(client, upstream.url(), method="POST") == (200, b"ok", False)
    first, second = (head.decode().lower() for head in upstream.heads)
    assert first.startswith("post /p?q=1 http/1.1\r\n")
    assert f"host: 127.0.0.1:{upstream.port}\r\n" in first
    assert "content-length: 3\r\n" in first and "999" not in first and "chunked" not in first
    assert "user-agent: mine\r\n" in first and "keyhole" not in first
    assert "content-length: 0\r\n" in second


async def test_unsolicited_bytes_retire_an_idle_connection(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawUpstream) -> None:
        await state.read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(answer(b"unasked"))  # would be taken as the next request's answer
        await asyncio.sleep(1)

    upstream = await serve(chatty)
    assert await fetch(client, upstream.url()) == (200, b"ok", False)
    await asyncio.sleep(0.1)
    assert await fetch(client, upstream.url()) == (200, b"ok", False)
    assert upstream.connections == 2


async def test_stream_bounds_each_wait_and_the_whole_exchange(
    serve: Callable[[Handler], Awaitable[RawUpstream]], client: EgressClient
) -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawUpstream) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
        for _ in range(20):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    upstream = await serve(trickle)
    async with client.stream(
        "GET", upstream.url(), headers=None, timeout_ms=500, deadline_ms=5000
    ) as response:
        assert await read_capped(response, MIB) == (b"x" * 20, False)  # every gap is under 500 ms
    async with client.stream(
        "GET", upstream.url(), headers=None, timeout_ms=500, deadline_ms=300
    ) as response:
        with pytest.raises(UpstreamTimeout):
            await read_capped(response, MIB)


async def test_pool_limit_bounds_concurrent_exchanges(
    serve: Callable[[Handler], Awaitable[RawUpstream]],
) -> None:
    in_flight = 0
    peak = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: RawUpstream) -> None:
        nonlocal in_flight, peak
        while True:
            await state.read_request(reader)
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.05)
            in_flight -= 1
            writer.write(answer(b"ok"))
            await writer.drain()

    upstream = await serve(slow)
    client = EgressClient(EgressPolicy([LOOPBACK_V4]), limits=EgressLimits(in_flight=2))
    try:
        # Two run and two wait, the most that may (see test_capacity for what happens beyond).
        results = await asyncio.gather(*(fetch(client, upstream.url()) for _ in range(4)))
    finally:
        await client.close()
    assert results == [(200, b"ok", False)] * 4
    assert peak == 2
    assert upstream.connections == 2  # the two connections were reused, not reopened
