"""Refresh: single flight across two processes, dead refresh tokens, and the 401 policy."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import REDIS_URL, KeyholeServer, require_service

from .conftest import AuthServer
from .helpers import connected, proxy, reauthorize

SHORT = "2"  # seconds of life for the tokens the tests let expire
MARGIN = {"KEYHOLE_OAUTH_REFRESH_MARGIN_SECONDS": "1"}


def _expired_connection(server: KeyholeServer, keys, authserver: AuthServer) -> str:  # type: ignore[no-untyped-def]
    """Connect with tokens that live 2 s, then wait until they are past expiry."""
    authserver.configure(expires_in=int(SHORT))
    connection_id = connected(server.url, keys, authserver)
    authserver.configure(expires_in=3600)
    time.sleep(int(SHORT) + 0.5)
    return connection_id


@pytest.mark.redis
def test_fifty_concurrent_calls_on_two_processes_refresh_once(make_server, authserver: AuthServer) -> None:  # type: ignore[no-untyped-def]
    parts = urlsplit(REDIS_URL)
    require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    _fifty_calls_refresh_once(make_server, authserver, KEYHOLE_REDIS_URL=REDIS_URL, **MARGIN)


def test_without_redis_the_database_lease_serialises_processes(make_server, authserver: AuthServer) -> None:  # type: ignore[no-untyped-def]
    _fifty_calls_refresh_once(make_server, authserver, **MARGIN)


def _fifty_calls_refresh_once(make_server, authserver: AuthServer, **env: str) -> None:  # type: ignore[no-untyped-def]
    first = make_server(**env)
    second = make_server(home=first.home, **env)
    keys = first.bootstrap("org-oauth", "ada@oauth.test")
    connection_id = _expired_connection(first, keys, authserver)
    refreshes = authserver.count("token:refresh_token")

    def call(index: int) -> httpx.Response:
        return proxy((first, second)[index % 2].url, keys, connection_id)

    with ThreadPoolExecutor(max_workers=50) as pool:
        replies = list(pool.map(call, range(50)))
    assert [reply.status_code for reply in replies] == [200] * 50, [
        r.text for r in replies if r.status_code != 200
    ][:2]
    assert all(reply.json()["data"]["status"] == 200 for reply in replies)
    assert authserver.count("token:refresh_token") == refreshes + 1
    assert authserver.count("resource:401") == 0


def test_revoked_refresh_token_fails_once_then_stops(make_server, authserver: AuthServer) -> None:  # type: ignore[no-untyped-def]
    server = make_server(**MARGIN)
    keys = server.bootstrap("org-oauth", "ada@oauth.test")
    connection_id = _expired_connection(server, keys, authserver)
    authserver.revoke(refresh=True)
    refreshes, resource = authserver.count("token:refresh_token"), authserver.count("resource")

    replies = [proxy(server.url, keys, connection_id) for _ in range(5)]
    assert [reply.status_code for reply in replies] == [409] * 5
    assert {reply.json()["key"] for reply in replies} == {"reauthorization_required"}
    assert "reconnect" in replies[0].json()["message"]
    assert authserver.count("token:refresh_token") == refreshes + 1
    assert authserver.count("resource") == resource  # no upstream traffic at all

    view = httpx.get(f"{server.url}/api/connections/{connection_id}", headers=keys.bearer).json()["data"]
    assert view["status"] == "unhealthy" and "invalid_grant" in view["status_error"]
    account = httpx.get(
        f"{server.url}/api/v3.1/connected_accounts/{connection_id}", headers={"x-api-key": keys.user_api_key}
    ).json()
    assert account["status"] == "EXPIRED" and "invalid_grant" in account["status_reason"]

    # Reconnecting the same connection heals it.
    reauthorize(server.url, keys, connection_id)
    assert proxy(server.url, keys, connection_id).json()["data"]["status"] == 200


def test_upstream_401_refreshes_once_and_retries_once(make_server, authserver: AuthServer) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    keys = server.bootstrap("org-oauth", "ada@oauth.test")
    connection_id = connected(server.url, keys, authserver)
    assert proxy(server.url, keys, connection_id).json()["data"]["status"] == 200

    authserver.revoke(access=True)  # the cached token still looks valid for an hour
    refreshes, unauthorized = authserver.count("token:refresh_token"), authserver.count("resource:401")
    reply = proxy(server.url, keys, connection_id)
    assert reply.json()["data"]["status"] == 200
    assert authserver.count("token:refresh_token") == refreshes + 1
    assert authserver.count("resource:401") == unauthorized + 1

    # A resource that refuses every token: one refresh, one retry, then the 401 goes back.
    authserver.configure(resource_always_401=True)
    refreshes, resource = authserver.count("token:refresh_token"), authserver.count("resource")
    reply = proxy(server.url, keys, connection_id)
    assert reply.status_code == 200 and reply.json()["data"]["status"] == 401
    assert authserver.count("token:refresh_token") == refreshes + 1
    assert authserver.count("resource") == resource + 2


def test_client_credentials_tokens_are_cached(make_server, authserver: AuthServer) -> None:  # type: ignore[no-untyped-def]
    server = make_server(**MARGIN)
    keys = server.bootstrap("org-oauth", "ada@oauth.test")
    created = httpx.post(
        server.url + "/api/connections",
        json={
            "name": "m2m",
            "type": "api",
            "configuration": {"url": authserver.url, "auth": authserver.auth("client_credentials")},
        },
        headers=keys.bearer,
    )
    assert created.status_code == 200, created.text
    connection_id = created.json()["data"]["id"]
    assert created.json()["data"]["status"] == "healthy"
    for _ in range(10):
        assert proxy(server.url, keys, connection_id).json()["data"]["status"] == 200
    assert authserver.count("token:client_credentials") == 1

    # A token that arrives already inside the refresh margin is never trusted: each call fetches.
    authserver.configure(expires_in=1)
    other = httpx.post(
        server.url + "/api/connections",
        json={
            "name": "m2m-short",
            "type": "api",
            "configuration": {"url": authserver.url, "auth": authserver.auth("client_credentials")},
        },
        headers=keys.bearer,
    ).json()["data"]["id"]
    for _ in range(3):
        assert proxy(server.url, keys, other).json()["data"]["status"] == 200
    assert authserver.count("token:client_credentials") == 1 + 3
    assert proxy(server.url, keys, connection_id).json()["data"]["status"] == 200  # still cached
    assert authserver.count("token:client_credentials") == 4
