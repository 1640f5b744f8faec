"""An upstream that fails in the middle of a binary answer gets a clean 502/504, never a 500.

A binary answer streams into the blob store; when the upstream closes early or stalls, the partial
object is deleted (on a local blob directory that raises Python's own FileNotFoundError when the
object was never written) and the caller gets the upstream failure in the Composio envelope, with
an audit record.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from proxy.support import RawUpstream

from .conftest import Composio, envelope

EARLY_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n"
    b"Connection: close\r\n\r\n0123456789"
)


@pytest.fixture(scope="module")
def broken() -> Iterator[RawUpstream]:
    upstream = RawUpstream({"/early-close": EARLY_CLOSE}).start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def stalling() -> Iterator[str]:
    """Sends a binary head and 10 bytes, then nothing for 6 s."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(EARLY_CLOSE)
                time.sleep(6)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def _calls(cio: Composio, account: str) -> list[dict[str, object]]:
    response = cio.client.get(f"/api/connections/{account}/proxy/calls")
    assert response.status_code == 200, response.text
    calls: list[dict[str, object]] = response.json()["data"]
    return calls


def test_an_early_close_is_a_502(cio_a: Composio, broken: RawUpstream, user_id: str) -> None:
    account = cio_a.account(broken.url(), user_id=user_id)
    response = cio_a.proxy({"endpoint": "/early-close", "method": "GET", "connected_account_id": account})
    error = envelope(response, 502)
    assert "internal" not in error["message"].lower()
    deadline = time.monotonic() + 10
    while not _calls(cio_a, account) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [call["outcome"] for call in _calls(cio_a, account)] == ["upstream_unreachable"]


def test_a_stall_mid_body_is_a_504(cio_a: Composio, stalling: str, user_id: str) -> None:
    config = cio_a.auth_config()
    account = cio_a.account(stalling, user_id=user_id, config_id=config)
    patched = cio_a.client.put(
        f"/api/connections/{account}",
        json={
            "name": "stalling",
            "configuration": {
                "url": stalling,
                "auth": {"type": "bearer", "token": "[REDACTED]"},
                "proxy": {"timeout_ms": 1000},
            },
            "validate": False,
        },
    )
    assert patched.status_code == 200, patched.text
    response = cio_a.proxy({"endpoint": "/slow", "method": "GET", "connected_account_id": account})
    error = envelope(response, 504)
    assert "internal" not in error["message"].lower()
