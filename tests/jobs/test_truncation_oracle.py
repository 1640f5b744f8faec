"""The truncation oracle through an async proxy call's download, on both engines: a body cut at
``max_async_body_bytes`` always loses the same tail, so a guess of the secret's first characters
and a wrong guess give the same blob and the same ``contentLength``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyhole.vault.scrub import Scrubber
from proxy.support import LocalUpstream, guess_at_cap, reflect_query

from .support import TOKEN, AsyncApi

CAP = 1024
TAIL = Scrubber.of([TOKEN]).tail


@pytest.fixture(scope="module")
def reflector() -> Iterator[LocalUpstream]:
    instance = LocalUpstream().start()
    yield instance
    instance.stop()


def download(
    client: AsyncApi, connection: str, guess: str, content_type: str
) -> tuple[bytes, dict[str, Any]]:
    submitted = client.accepted(
        connection, "/reflect", query=reflect_query(guess_at_cap(guess, CAP), content_type)
    )
    job = client.wait(submitted["jobId"])
    assert job["status"] == "done", job
    result = job["result"]
    assert result["truncated"] is True
    shown = {key: result[key] for key in ("status", "contentType", "contentLength", "truncated")}
    return httpx.get(result["bodyDownloadUrl"]).content, shown


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream"])
def test_a_prefix_guess_and_a_wrong_guess_download_the_same_body(
    client_a: AsyncApi, reflector: LocalUpstream, content_type: str
) -> None:
    connection = client_a.connection(reflector.url(), proxy={"max_async_body_bytes": CAP})
    for length in (1, 5, len(TOKEN) - 1):
        right = download(client_a, connection, TOKEN[:length], content_type)
        wrong = download(client_a, connection, "#" * length, content_type)
        assert right == wrong
        body, shown = right
        assert body == guess_at_cap("#" * length, CAP)[: CAP - TAIL]
        assert shown["contentLength"] == len(body)
    assert {call["bytesOut"] for call in audited(client_a, connection, 6)} == {CAP - TAIL}


def audited(client: AsyncApi, connection: str, count: int) -> list[dict[str, Any]]:
    """The connection's ``count`` audit records: a job's is written as it ends, maybe by a worker
    process that flushes its own buffer, so they may show a moment after the job is done."""
    deadline = time.monotonic() + 30
    while True:
        calls = client.client.get(f"/api/connections/{connection}/proxy/calls", params={"limit": 50})
        records: list[dict[str, Any]] = calls.json()["data"]
        if len(records) >= count or time.monotonic() > deadline:
            assert len(records) == count, records
            return records
        time.sleep(0.2)
