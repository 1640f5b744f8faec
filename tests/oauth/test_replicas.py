"""Two servers on one store: what changes through one reaches the other within the cache TTL.

Each server keeps per-process state about an OAuth connection (its access token until near
expiry, a refused client's cool-down). A re-authorization, a fixed configuration or a revoked
grant made through server A must take effect on server B within ``KEYHOLE_CACHE_TTL_SECONDS``
(1 s here); the tests allow a few TTLs and poll, since B's answer is all they can observe.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from conftest import KeyholeServer, Keys, fresh_postgres_database

from .conftest import AuthServer
from .helpers import connected, proxy, reauthorize

TTL = {"KEYHOLE_CACHE_TTL_SECONDS": "1"}
BOUND_SECONDS = 5.0  # a few cache TTLs


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """The environment of a store both servers share. Ask for it before ``make_server``: it is
    torn down (a PostgreSQL database dropped) after the servers have stopped."""
    if request.param == "sqlite":
        yield {}  # the second server shares the first one's home, hence its SQLite file
        return
    async with fresh_postgres_database("keyhole_replicas") as name:
        yield {
            "KEYHOLE_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
            "KEYHOLE_MASTER_KEYS": f"replicas:{base64.b64encode(os.urandom(32)).decode()}",
        }


def _pair(
    make_server: Callable[..., KeyholeServer], store: dict[str, str], **a_env: str
) -> tuple[KeyholeServer, KeyholeServer, Keys]:
    a = make_server(**TTL, **store, **a_env)
    b = make_server(home=a.home, **TTL, **store)
    return a, b, a.bootstrap("org-replicas", "ada@replicas.test")


def _eventually(check: Callable[[], Any]) -> Any:
    """Poll ``check`` until it answers something truthy, for at most ``BOUND_SECONDS``."""
    deadline = time.monotonic() + BOUND_SECONDS
    while True:
        outcome = check()
        if outcome or time.monotonic() >= deadline:
            return outcome
        time.sleep(0.1)


def _token_sent(server: KeyholeServer, keys: Keys, connection_id: str) -> int:
    """Which access token ``server`` sent, by the authorization server's issue number."""
    reply = proxy(server.url, keys, connection_id)
    assert reply.status_code == 200 and reply.json()["data"]["status"] == 200, reply.text
    return int(json.loads(reply.json()["data"]["body"])["token"])


def _refused_with(server: KeyholeServer, keys: Keys, connection_id: str, status: int, key: str) -> bool:
    reply = proxy(server.url, keys, connection_id)
    return reply.status_code == status and reply.json()["key"] == key


def test_a_reauthorization_through_one_server_reaches_the_other(
    store: dict[str, str], make_server: Callable[..., KeyholeServer], authserver: AuthServer
) -> None:
    a, b, keys = _pair(make_server, store)
    connection_id = connected(a.url, keys, authserver)
    old = _token_sent(b, keys, connection_id)
    assert _token_sent(b, keys, connection_id) == old  # cached on B: valid for an hour

    reauthorize(a.url, keys, connection_id)
    new = _token_sent(a, keys, connection_id)
    assert new != old
    refreshes = authserver.count("token:refresh_token")
    assert _eventually(lambda: _token_sent(b, keys, connection_id) == new)
    assert authserver.count("token:refresh_token") == refreshes  # B read it; nobody refreshed


def test_a_client_fixed_through_one_server_is_used_by_the_other(
    store: dict[str, str], make_server: Callable[..., KeyholeServer], authserver: AuthServer
) -> None:
    a, b, keys = _pair(make_server, store)
    good = authserver.auth("client_credentials")
    created = httpx.post(
        a.url + "/api/connections",
        json={
            "name": "m2m",
            "type": "api",
            "configuration": {"url": authserver.url, "auth": {**good, "client_secret": "not-the-secret"}},
        },
        headers=keys.bearer,
        timeout=30,
    )
    assert created.status_code == 200, created.text
    connection_id = created.json()["data"]["id"]
    assert _refused_with(b, keys, connection_id, 409, "oauth_client_rejected")
    asked = authserver.count("token:client_credentials")
    assert _refused_with(b, keys, connection_id, 409, "oauth_client_rejected")
    assert authserver.count("token:client_credentials") == asked  # B's cool-down: not asked again

    fixed = httpx.put(
        f"{a.url}/api/connections/{connection_id}",
        json={"name": "m2m", "configuration": {"url": authserver.url, "auth": good}},
        headers=keys.bearer,
        timeout=30,
    )
    assert fixed.status_code == 200, fixed.text
    assert _eventually(lambda: proxy(b.url, keys, connection_id).json().get("data", {}).get("status") == 200)


def test_a_grant_revoked_through_one_server_stops_the_other(
    make_server: Callable[..., KeyholeServer], authserver: AuthServer
) -> None:
    # A refreshes 200 s before expiry, B (the default margin) 60 s before: with tokens that live
    # 150 s, A refreshes at its next call while B still holds a token it trusts for 90 s.
    a, b, keys = _pair(make_server, {}, KEYHOLE_OAUTH_REFRESH_MARGIN_SECONDS="200")
    authserver.configure(expires_in=150)
    connection_id = connected(a.url, keys, authserver)
    authserver.configure(expires_in=3600)
    _token_sent(b, keys, connection_id)

    authserver.revoke(refresh=True)  # the access token B holds stays valid at the provider
    assert _refused_with(a, keys, connection_id, 409, "reauthorization_required")
    assert _eventually(lambda: _refused_with(b, keys, connection_id, 409, "reauthorization_required"))
    resource = authserver.count("resource")
    assert _refused_with(b, keys, connection_id, 409, "reauthorization_required")
    assert authserver.count("resource") == resource  # the old token is not sent any more


def test_a_connection_retargeted_or_disabled_through_one_server_stops_the_other(
    make_server: Callable[..., KeyholeServer], authserver: AuthServer
) -> None:
    a, b, keys = _pair(make_server, {})
    moved, disabled = connected(a.url, keys, authserver), connected(a.url, keys, authserver)
    _token_sent(b, keys, moved)
    _token_sent(b, keys, disabled)

    # Another base URL: the tokens were granted for the old one and are never sent to the new.
    retargeted = httpx.put(
        f"{a.url}/api/connections/{moved}",
        json={"name": "moved", "configuration": {"url": authserver.url + "/v2", "auth": authserver.auth()}},
        headers=keys.bearer,
        timeout=30,
    )
    assert retargeted.status_code == 200, retargeted.text
    account = httpx.patch(
        f"{a.url}/api/v3.1/connected_accounts/{disabled}/status",
        json={"enabled": False},
        headers={"x-api-key": keys.user_api_key},
        timeout=30,
    )
    assert account.status_code == 200, account.text

    assert _eventually(lambda: _refused_with(b, keys, moved, 409, "authorization_required"))
    assert _eventually(lambda: _refused_with(b, keys, disabled, 403, "proxy_disabled"))
