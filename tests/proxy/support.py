"""Shared helpers of the connection-proxy suite: an API wrapper and a counting local upstream."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

GIB = 1024**3
CHUNK = 64 * 1024
TOKEN = "tok_Z9qR4vX2mL7pK3sW8nB5"  # upstream credential used by most connections here


@dataclass
class Gateway:
    """The Polytomic proxy API of one server, as one organization."""

    client: httpx.Client

    def create(
        self,
        url: str,
        *,
        auth: dict[str, Any] | None = None,
        proxy: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> str:
        configuration: dict[str, Any] = {"url": url}
        for name, value in (("auth", auth), ("proxy", proxy), ("headers", headers), ("query", query)):
            if value is not None:
                configuration[name] = value
        response = self.client.post(
            "/api/connections",
            json={
                "name": f"proxy-test-{uuid.uuid4().hex[:8]}",
                "type": "api",
                "configuration": configuration,
                "validate": False,
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["data"]["id"])

    def call(self, connection_id: str, **request: Any) -> httpx.Response:
        return self.client.post(f"/api/connections/{connection_id}/proxy", json={"request": request})

    def ok(self, connection_id: str, **request: Any) -> dict[str, Any]:
        """A call that must succeed at the proxy level; returns ``data``."""
        response = self.call(connection_id, **request)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def refused(self, connection_id: str, status: int, key: str, **request: Any) -> dict[str, Any]:
        """A call the proxy must refuse with ``status`` and error ``key``; returns the error body."""
        response = self.call(connection_id, **request)
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        assert body["status"] == status
        assert body["key"] == key, body
        assert response.headers["content-type"].startswith("application/json")
        return body

    def info(self, connection_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/connections/{connection_id}/proxy/info")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def calls(self, connection_id: str, **params: Any) -> dict[str, Any]:
        response = self.client.get(f"/api/connections/{connection_id}/proxy/calls", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def set_enabled(self, connection_id: str, enabled: bool) -> dict[str, Any]:
        response = self.client.put(
            f"/api/connections/{connection_id}/proxy/settings", json={"enabled": enabled}
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data


def reflect_query(body: bytes, content_type: str = "text/plain") -> dict[str, str]:
    """The query of a ``LocalUpstream`` ``/reflect`` call answering ``body``."""
    return {"body": base64.urlsafe_b64encode(body).decode(), "type": content_type}


def guess_at_cap(guess: str, cap: int) -> bytes:
    """An answer longer than ``cap`` whose bytes just before the cut are the caller's ``guess``:
    the probe of the truncation oracle."""
    return b"A" * (cap - len(guess.encode())) + guess.encode() + b" and the rest of the answer"


def gateway(base_url: str, headers: dict[str, str]) -> Gateway:
    return Gateway(httpx.Client(base_url=base_url, headers=headers, timeout=60))


@dataclass
class LocalUpstream:
    """A counting HTTP upstream on 127.0.0.1 (and [::1] on the same port when possible).

    Routes (any method):
      ``/big?size=N``         streams N bytes of ``x`` (default 1 GiB) in 64 KiB chunks
      ``/echo-binary?pad=N``  application/octet-stream: 3 bytes, N NULs, ``bin:`` and the Authorization header
      ``/echo-content-type``  Content-Type header carrying the Authorization header
      ``/encoded?enc=C``      gzip of a JSON echo of the Authorization header, labelled with each
                              ``enc`` as a Content-Encoding header
      ``/cut``                announces 1000 bytes, sends 10 and closes the connection
      ``/reflect?body=B&type=T``  the base64url-decoded ``B`` as the body, content type ``T``
                              (text/plain by default): an upstream that says what it is told
      anything else           200 ``ok``
    """

    port: int = 0
    has_v6: bool = False
    accepts: int = 0
    requests: list[str] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _servers: list[asyncio.Server] = field(default_factory=list)

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def hits(self, prefix: str) -> int:
        return sum(1 for seen in list(self.requests) if seen.startswith(prefix))

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalUpstream:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._setup())
            except BaseException as exc:  # surfaced to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._teardown())
            loop.close()

        self._thread = threading.Thread(target=run, name="local-upstream", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    async def _setup(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        make_handler = self._runner.server
        assert make_handler is not None

        def factory() -> asyncio.Protocol:
            self.accepts += 1
            return make_handler()

        loop = asyncio.get_running_loop()
        for _ in range(20):
            v4 = await loop.create_server(factory, "127.0.0.1", 0)
            self.port = v4.sockets[0].getsockname()[1]
            try:
                v6 = await loop.create_server(factory, "::1", self.port)
            except OSError:
                v4.close()
                await v4.wait_closed()
                continue
            self._servers = [v4, v6]
            self.has_v6 = True
            return
        self._servers = [await loop.create_server(factory, "127.0.0.1", 0)]
        self.port = self._servers[0].sockets[0].getsockname()[1]

    async def _teardown(self) -> None:
        for server in self._servers:
            server.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- routes ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.raw_path)  # as sent: path and query, still encoded
        auth = request.headers.get("Authorization", "")
        if request.path.startswith("/big"):
            return await self._big(request)
        if request.path == "/echo-binary":
            pad = b"\x00" * int(request.query.get("pad", "0"))
            return web.Response(
                body=b"\x00\xff\xfe" + pad + b"bin:" + auth.encode(), content_type="application/octet-stream"
            )
        if request.path == "/reflect":
            body = base64.urlsafe_b64decode(request.query.get("body", ""))
            return web.Response(body=body, headers={"Content-Type": request.query.get("type", "text/plain")})
        if request.path == "/echo-content-type":
            return web.Response(body=b"ok", headers={"Content-Type": f"text/plain; echo={auth}"})
        if request.path == "/encoded":
            body = gzip.compress(b'{"echo": "' + auth.encode() + b'"}')
            codings = request.query.getall("enc")
            encoded = web.Response(body=body, headers={"Content-Type": "application/json"})
            for coding in codings:
                encoded.headers.add("Content-Encoding", coding)
            return encoded
        if request.path == "/cut":
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            response.content_length = 1000
            await response.prepare(request)
            await response.write(b"x" * 10)
            assert request.transport is not None
            request.transport.close()
            return response
        return web.Response(text="ok")

    async def _big(self, request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("size", GIB))
        key = request.raw_path
        self.sent[key] = 0
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.content_length = size
        await response.prepare(request)
        chunk = b"x" * CHUNK
        with contextlib.suppress(ConnectionError):
            while self.sent[key] < size:
                piece = chunk[: size - self.sent[key]]
                await response.write(piece)
                self.sent[key] += len(piece)
        return response


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RawUpstream:
    """A socket server answering each request with the canned bytes registered for its path,
    for responses no HTTP framework would produce (invalid header bytes, odd status lines)."""

    responses: dict[str, bytes]
    port: int = 0
    accepts: int = 0
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RawUpstream:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="raw-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()

    def _serve(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepts += 1
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                parts = head.split(b" ", 2)
                path = parts[1].decode(errors="replace").split("?")[0] if len(parts) > 1 else "/"
                with contextlib.suppress(OSError):
                    conn.sendall(
                        self.responses.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    )
