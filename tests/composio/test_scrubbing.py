"""Echo scrubbing through the Composio proxy. The truncation oracle: a text answer cut at the
connection's cap, and a binary answer streamed to the blob store and cut at
``max_async_body_bytes``, give the same bytes for a guess of the secret's first characters and for
a wrong guess. A binary answer's content type is scrubbed like any other."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from conftest import KeyholeServer, Keys
from keyhole.vault.scrub import Scrubber
from proxy.support import LocalUpstream, guess_at_cap, reflect_query

from .conftest import TOKEN, Composio

CAP = 1024
TAIL = Scrubber.of([TOKEN]).tail


@pytest.fixture(scope="module")
def reflector() -> Iterator[LocalUpstream]:
    instance = LocalUpstream().start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def account(server: KeyholeServer, org_a: Keys, reflector: LocalUpstream) -> str:
    """A connection with small caps (made through the Polytomic routes, which can set them): the
    same row is a connected account of the user ``default``."""
    configuration = {
        "url": reflector.url(),
        "auth": {"type": "bearer", "token": TOKEN},
        "proxy": {"max_response_body_bytes": CAP, "max_async_body_bytes": CAP},
    }
    response = httpx.post(
        f"{server.url}/api/connections",
        headers=org_a.bearer,
        json={"name": f"oracle-{uuid.uuid4().hex[:8]}", "type": "api", "configuration": configuration},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def probe(cio: Composio, account: str, guess: str, content_type: str) -> tuple[Any, bytes | None]:
    """What the caller gets: the inline ``data``, or the downloaded ``binary_data`` with its size."""
    query = urlencode(reflect_query(guess_at_cap(guess, CAP), content_type))
    result = cio.ok({"endpoint": f"/reflect?{query}", "method": "GET", "connected_account_id": account})
    assert result["status"] == 200
    binary = result.get("binary_data")
    if binary is None:
        return result["data"], None
    body = httpx.get(binary["url"]).content
    assert binary["size"] == len(body)
    return (binary["content_type"], binary["size"]), body


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream"])
@pytest.mark.parametrize("length", [1, 6, len(TOKEN) - 1])
def test_a_prefix_guess_and_a_wrong_guess_get_the_same_answer(
    cio_a: Composio, account: str, content_type: str, length: int
) -> None:
    right = probe(cio_a, account, TOKEN[:length], content_type)
    wrong = probe(cio_a, account, "#" * length, content_type)
    assert right == wrong
    shown, blob = right
    expected = guess_at_cap("#" * length, CAP)[: CAP - TAIL]
    assert (blob if blob is not None else str(shown).encode()) == expected


def test_a_binary_answers_content_type_is_scrubbed(cio_a: Composio, account: str) -> None:
    content_type = f"application/octet-stream; echo={TOKEN.upper()}"
    query = urlencode(reflect_query(b"\x00\x01 binary", content_type))
    result = cio_a.ok({"endpoint": f"/reflect?{query}", "method": "GET", "connected_account_id": account})
    shown = result["binary_data"]["content_type"]
    assert shown == "application/octet-stream; echo=[REDACTED]"
    assert result["headers"]["content-type"] == shown
    assert httpx.get(result["binary_data"]["url"]).content == b"\x00\x01 binary"
