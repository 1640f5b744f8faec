"""Idempotency-Key on POST (Polytomic spec 1.6): the first request fixes the outcome for a day,
a concurrent one gets 409, a different request under the same key 422."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from polytomic import Polytomic
from polytomic.types import ConnectionProxyCall

from conftest import KeyholeServer, Keys, server_env
from jobs.support import AsyncApi, Upstream, api, kill9

KEY = "Idempotency-Key"


def fresh_key() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def alice(server: KeyholeServer, org_a: Keys) -> Iterator[AsyncApi]:
    instance = api(server.url, org_a.bearer)
    yield instance
    instance.client.close()


@pytest.fixture(scope="module")
def bob(server: KeyholeServer, org_b: Keys) -> Iterator[AsyncApi]:
    instance = api(server.url, org_b.bearer)
    yield instance
    instance.client.close()


def proxy(client: AsyncApi, connection: str, path: str, key: str | None, **extra: Any) -> httpx.Response:
    return client.client.post(
        f"/api/connections/{connection}/proxy",
        json={"request": {"method": "GET", "path": path}, **extra},
        headers={KEY: key} if key is not None else None,
    )


def test_a_replay_never_reaches_the_upstream(alice: AsyncApi, counting_upstream: Upstream) -> None:
    connection = alice.connection(counting_upstream.url)
    path, key = f"/count/{uuid.uuid4().hex}", fresh_key()
    first = proxy(alice, connection, path, key)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(3):
        again = proxy(alice, connection, path, key)
        assert again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.json() == first.json()  # same proxyCallId, same body
    assert counting_upstream.hits(path) == 1
    assert proxy(alice, connection, path, None).status_code == 200  # no key: runs again
    assert counting_upstream.hits(path) == 2


def test_async_submissions_replay_the_same_job(alice: AsyncApi, counting_upstream: Upstream) -> None:
    connection = alice.connection(counting_upstream.url)
    path, key = f"/count/{uuid.uuid4().hex}", fresh_key()
    first = proxy(alice, connection, path, key, **{"async": True})
    second = proxy(alice, connection, path, key, **{"async": True})
    assert first.json()["data"]["jobId"] == second.json()["data"]["jobId"]
    alice.wait(first.json()["data"]["jobId"])
    assert counting_upstream.hits(path) == 1


def test_errors_are_fixed_too(alice: AsyncApi) -> None:
    key = fresh_key()
    missing = f"/api/connections/{uuid.uuid4()}/proxy"
    first = alice.client.post(missing, json={"request": {"method": "GET", "path": "/"}}, headers={KEY: key})
    again = alice.client.post(missing, json={"request": {"method": "GET", "path": "/"}}, headers={KEY: key})
    assert (first.status_code, again.status_code) == (404, 404)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


def test_creating_a_connection_twice_creates_one(alice: AsyncApi, counting_upstream: Upstream) -> None:
    key = fresh_key()
    body = {
        "name": f"idem-{key}",
        "type": "api",
        "configuration": {"url": counting_upstream.url},
        "validate": False,
    }
    ids = {
        alice.client.post("/api/connections", json=body, headers={KEY: key}).json()["data"]["id"]
        for _ in range(3)
    }
    assert len(ids) == 1
    listed = [
        item for item in alice.client.get("/api/connections").json()["data"] if item["name"] == body["name"]
    ]
    assert len(listed) == 1


def test_a_concurrent_request_gets_409(alice: AsyncApi, counting_upstream: Upstream) -> None:
    connection = alice.connection(counting_upstream.url)
    key = fresh_key()
    path = "/delay"
    marker = f"seconds=3&n={uuid.uuid4().hex}"
    results: list[httpx.Response] = []
    # the first request is a slow one; its key is in progress while it runs
    body = {"request": {"method": "GET", "path": path, "rawQuery": marker}}
    first = threading.Thread(
        target=lambda: results.append(
            alice.client.post(f"/api/connections/{connection}/proxy", json=body, headers={KEY: key})
        )
    )
    first.start()
    deadline = time.monotonic() + 30
    while counting_upstream.hits(f"{path}?{marker}") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    clash = alice.client.post(f"/api/connections/{connection}/proxy", json=body, headers={KEY: key})
    first.join(60)
    assert clash.status_code == 409, clash.text
    assert clash.json()["key"] == "idempotency_key_in_progress"
    assert clash.headers["retry-after"] == "1"
    [original] = results
    assert original.status_code == 200
    after = alice.client.post(f"/api/connections/{connection}/proxy", json=body, headers={KEY: key})
    assert after.json() == original.json()
    assert counting_upstream.hits(f"{path}?{marker}") == 1


def test_the_same_key_for_another_request_is_422(alice: AsyncApi, counting_upstream: Upstream) -> None:
    connection = alice.connection(counting_upstream.url)
    other = alice.connection(counting_upstream.url)
    key = fresh_key()
    assert proxy(alice, connection, "/count/a", key).status_code == 200
    for response in (
        proxy(alice, connection, "/count/b", key),  # another body
        proxy(alice, other, "/count/a", key),  # another path
        alice.client.post(
            f"/api/connections/{connection}/proxy?x=1",
            json={"request": {"method": "GET", "path": "/count/a"}},
            headers={KEY: key},
        ),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["key"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    "bad",
    ["short77", "x" * 256, "has space", "ümlaut-key", "a/b/c/d/e", "semi;colon", "quote'key1"],
)
def test_malformed_keys_are_400(alice: AsyncApi, counting_upstream: Upstream, bad: str) -> None:
    connection = alice.connection(counting_upstream.url)
    path = f"/count/{uuid.uuid4().hex}"
    response = alice.client.post(
        f"/api/connections/{connection}/proxy",
        json={"request": {"method": "GET", "path": path}},
        headers=[(KEY.encode(), bad.encode())],
    )
    assert response.status_code == 400, response.text
    assert response.json()["key"] == "invalid_idempotency_key"
    assert counting_upstream.hits(path) == 0


def test_key_length_limits_are_inclusive(alice: AsyncApi, counting_upstream: Upstream) -> None:
    connection = alice.connection(counting_upstream.url)
    unique = uuid.uuid4().hex
    for key in (unique[:8], (("Z-_" + unique) * 8)[:255]):
        response = proxy(alice, connection, f"/count/{uuid.uuid4().hex}", key)
        assert response.status_code == 200, response.text


def test_keys_are_scoped_per_organization(
    alice: AsyncApi, bob: AsyncApi, counting_upstream: Upstream
) -> None:
    key, path = fresh_key(), f"/count/{uuid.uuid4().hex}"
    mine, theirs = alice.connection(counting_upstream.url), bob.connection(counting_upstream.url)
    first = proxy(alice, mine, path, key)
    other = proxy(bob, theirs, path, key)
    assert (first.status_code, other.status_code) == (200, 200)
    assert "idempotent-replayed" not in other.headers
    assert counting_upstream.hits(path) == 2
    assert proxy(bob, theirs, path, key).headers["idempotent-replayed"] == "true"


def test_rate_limited_answers_are_not_fixed(alice: AsyncApi, counting_upstream: Upstream) -> None:
    connection = alice.connection(counting_upstream.url, proxy={"rate_limit_per_minute": 1})
    assert proxy(alice, connection, "/count/limit", fresh_key()).status_code == 200
    key = fresh_key()
    for _ in range(2):
        limited = proxy(alice, connection, "/count/limit", key)
        assert limited.status_code == 429
        assert "idempotent-replayed" not in limited.headers


def test_get_requests_ignore_the_header(alice: AsyncApi) -> None:
    assert alice.client.get("/api/connections", headers={KEY: "x"}).status_code == 200


def test_the_official_sdk_sends_and_gets_the_same_answer(
    server: KeyholeServer, org_a: Keys, counting_upstream: Upstream
) -> None:
    client = Polytomic(base_url=server.url, token=org_a.user_api_key, max_retries=0)
    connection = api(server.url, org_a.bearer).connection(counting_upstream.url)
    path, key = f"/count/{uuid.uuid4().hex}", fresh_key()
    replies = [
        client.connections.proxy.execute_proxy(
            id=connection, request=ConnectionProxyCall(method="GET", path=path), idempotency_key=key
        )
        for _ in range(2)
    ]
    assert replies[0].data is not None and replies[1].data is not None
    assert replies[0].data.proxy_call_id == replies[1].data.proxy_call_id
    assert counting_upstream.hits(path) == 1


# -- time-based behaviour on servers of their own ---------------------------------------------------


def _records(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "keyhole.db") as db:
        return [(row[0], row[1]) for row in db.execute("SELECT key, state FROM idempotency_keys")]


def test_keys_expire(tmp_path: Path, counting_upstream: Upstream) -> None:
    env = server_env(tmp_path, KEYHOLE_IDEMPOTENCY_TTL_SECONDS="2", KEYHOLE_PURGE_INTERVAL_SECONDS="1")
    server = KeyholeServer(tmp_path, env).start()
    try:
        keys = server.bootstrap("expiry", "e@expiry.test")
        client = api(server.url, keys.bearer)
        connection = client.connection(counting_upstream.url)
        key, path = fresh_key(), f"/count/{uuid.uuid4().hex}"
        assert proxy(client, connection, path, key).status_code == 200
        deadline = time.monotonic() + 60
        while any(stored == key for stored, _ in _records(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(stored == key for stored, _ in _records(tmp_path)), "the expired key was not purged"
        again = proxy(client, connection, path, key)
        assert (again.status_code, again.headers.get("idempotent-replayed")) == (200, None)
        assert counting_upstream.hits(path) == 2
    finally:
        server.stop()


def test_a_dead_request_does_not_block_its_key(tmp_path: Path, counting_upstream: Upstream) -> None:
    env = server_env(tmp_path, KEYHOLE_IDEMPOTENCY_LOCK_SECONDS="2")
    first = KeyholeServer(tmp_path, env).start()
    second: KeyholeServer | None = None
    try:
        keys = first.bootstrap("stale", "s@stale.test")
        client = api(first.url, keys.bearer)
        connection = client.connection(counting_upstream.url)
        key, marker = fresh_key(), f"seconds=6&n={uuid.uuid4().hex}"
        body = {"request": {"method": "GET", "path": "/delay", "rawQuery": marker}}

        def doomed() -> None:
            with contextlib.suppress(httpx.HTTPError):  # its server is killed under it
                httpx.post(
                    f"{first.url}/api/connections/{connection}/proxy",
                    json=body,
                    headers={**keys.bearer, KEY: key},
                    timeout=60,
                )

        thread = threading.Thread(target=doomed, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while counting_upstream.hits(f"/delay?{marker}") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (key, "in_progress") in _records(tmp_path)
        assert first.process is not None
        kill9(first.process)  # the request dies with its process, its marker stays behind
        first.process = None

        second = KeyholeServer(tmp_path, env).start()
        quick = {"request": {"method": "GET", "path": "/delay", "rawQuery": marker}}
        deadline = time.monotonic() + 60
        while True:
            response = httpx.post(
                f"{second.url}/api/connections/{connection}/proxy",
                json=quick,
                headers={**keys.bearer, KEY: key},
                timeout=60,
            )
            if response.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 200, response.text
        assert (key, "completed") in _records(tmp_path)
    finally:
        first.stop()
        if second is not None:
            second.stop()
