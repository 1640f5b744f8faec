"""An unexpected failure answers the dialect's 500 envelope and keeps the keep-alive connection
usable for the next request, on the framework path and on the fast proxy routes alike."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conftest import served_in_thread
from keyhole.api.fast_routes import FastRoutes
from keyhole.app import create_app
from keyhole.settings import Settings
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.service import TenancyService


async def _fail(request: Request) -> Response:
    # The fault under test: a defect inside a route, which no request can provoke on purpose.
    raise RuntimeError("a defect inside a route")


async def _defective_authentication(self: TenancyService, headers: object) -> Principal:
    raise RuntimeError("a defect inside authentication")


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    app = create_app(Settings(home=tmp_path, egress_allow=[]))
    fast_routes = app.app
    assert isinstance(fast_routes, FastRoutes)
    fast_routes.app.router.routes.append(Route("/api/v3/fail", _fail, methods=["GET"]))
    fast_routes.app.router.routes.append(Route("/api/fail", _fail, methods=["GET"]))
    # The proxy routes are served ahead of the router: a defect there must be answered the same way.
    monkeypatch.setattr(TenancyService, "authenticate", _defective_authentication)
    with served_in_thread(app) as url:
        yield int(url.rsplit(":", 1)[1])


def _exchange(connection: socket.socket, path: str) -> tuple[int, dict[str, str], bytes]:
    if "proxy" in path:
        body = b'{"request": {"method": "GET", "path": "/"}}'
        request_head = f"POST {path} HTTP/1.1\r\nHost: keyhole.test\r\nContent-Length: {len(body)}\r\n\r\n"
        connection.sendall(request_head.encode() + body)
    else:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: keyhole.test\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"the connection was closed after {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = connection.recv(65536)
        assert chunk, "the connection was closed mid-body"
        body += chunk
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("/api/fail", "polytomic"),
        ("/api/v3/fail", "composio"),
        ("/api/connections/c1/proxy", "polytomic"),
        ("/api/v3/tools/execute/proxy", "composio"),
        ("/api/v3.1/tool_router/session/s1/proxy_execute", "composio"),
    ],
)
def test_a_500_keeps_the_connection(served: int, path: str, dialect: str) -> None:
    with socket.create_connection(("127.0.0.1", served), timeout=10) as connection:
        for _ in range(2):
            status, headers, body = _exchange(connection, path)
            assert status == 500
            assert headers.get("connection", "").lower() != "close"
            envelope = json.loads(body)
            error = envelope if dialect == "polytomic" else envelope["error"]
            assert "quote the X-Request-Id" in error["message"]
            assert "defect" not in body.decode()
            status, _, _ = _exchange(connection, "/healthz")
            assert status == 200
