from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

import pytest
import yarl
from aiohttp import web

from keyhole.egress import EgressClient, EgressPolicy

BIG_BODY = 5 * 1024 * 1024
LOOPBACK_V4 = IPv4Network("127.0.0.0/8")


@dataclass
class Upstream:
    """A real HTTP server on 127.0.0.1 that counts every TCP connection it accepts."""

    port: int
    connections: int = 0
    requests: list[str] = field(default_factory=list)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> yarl.URL:
        return yarl.URL(f"http://{host}:{self.port}{path}")


def _app(state: Upstream) -> web.Application:
    async def count(request: web.Request) -> None:
        state.requests.append(request.path)

    async def ok(request: web.Request) -> web.Response:
        await count(request)
        return web.Response(text="ok")

    async def redirect(request: web.Request) -> web.Response:
        await count(request)
        return web.Response(status=302, headers={"Location": f"http://127.0.0.1:{state.port}/"})

    async def slow(request: web.Request) -> web.Response:
        await count(request)
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def slow_body(request: web.Request) -> web.StreamResponse:
        await count(request)
        response = web.StreamResponse()
        response.content_length = 1000
        await response.prepare(request)
        await response.write(b"x" * 10)
        await asyncio.sleep(5)
        return response

    async def stream(request: web.Request) -> web.StreamResponse:
        await count(request)
        size = int(request.query.get("size", BIG_BODY))
        response = web.StreamResponse()
        await response.prepare(request)  # chunked: the client cannot know the size up front
        chunk = b"a" * 65536
        sent = 0
        while sent < size:
            piece = chunk[: size - sent]
            await response.write(piece)
            sent += len(piece)
        await response.write_eof()
        return response

    async def set_cookie(request: web.Request) -> web.Response:
        await count(request)
        response = web.Response(text="set")
        response.set_cookie("session", "upstream-secret")
        return response

    async def echo_cookie(request: web.Request) -> web.Response:
        await count(request)
        return web.Response(text=request.headers.get("Cookie", ""))

    app = web.Application()
    app.router.add_get("/", ok)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/slow", slow)
    app.router.add_get("/slow-body", slow_body)
    app.router.add_get("/stream", stream)
    app.router.add_get("/set-cookie", set_cookie)
    app.router.add_get("/echo-cookie", echo_cookie)
    return app


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream(port=0)
    runner = web.AppRunner(_app(state), handler_cancellation=True)
    await runner.setup()
    make_handler = runner.server
    assert make_handler is not None

    def factory() -> asyncio.Protocol:
        state.connections += 1
        return make_handler()

    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(factory, "127.0.0.1", 0)]
    state.port = servers[0].sockets[0].getsockname()[1]
    with contextlib.suppress(OSError):  # also on [::1], so a leak through IPv6 is counted too
        servers.append(await loop.create_server(factory, "::1", state.port))
    yield state
    await runner.cleanup()
    for server in servers:
        server.close()
        await server.wait_closed()


@dataclass
class ResetUpstream:
    """Sends headers and part of the body, then resets the connection once ``go`` is set."""

    port: int
    go: asyncio.Event


@pytest.fixture
async def reset_upstream() -> AsyncIterator[ResetUpstream]:
    go = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        await go.wait()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield ResetUpstream(port=server.sockets[0].getsockname()[1], go=go)
    go.set()
    server.close()
    await server.wait_closed()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


MakeClient = Callable[..., EgressClient]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[EgressClient] = []

    def make(*allow: IPv4Network | IPv6Network) -> EgressClient:
        client = EgressClient(EgressPolicy(allow))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
