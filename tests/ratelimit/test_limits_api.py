"""Limits as operators and clients see them: "no limit", the bounds, and proxy info.

A connection's ``configuration.proxy.rate_limit_per_minute`` is 1..100,000,000 or ``null`` (no
limit); ``KEYHOLE_ORG_RATE_LIMIT_PER_MINUTE`` is 0 (no limit) to 100,000,000. Proxy info shows both
as they are enforced, ``null`` meaning none.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from polytomic import Polytomic
from pydantic import ValidationError

from conftest import REDIS_URL, KeyholeServer, Keys, require_service
from keyhole.connections.type_files import load_catalog
from keyhole.ratelimit import MAX_LIMIT_PER_MINUTE
from keyhole.settings import Settings
from proxy.support import TOKEN, Gateway, LocalUpstream, gateway

BEARER = {"type": "bearer", "token": TOKEN}
BAD_LIMITS = [0, -1, MAX_LIMIT_PER_MINUTE + 1, 10**30, "600", "unlimited", 1.5, True, [], {"perMinute": 5}]


@pytest.fixture
def upstream() -> Iterator[LocalUpstream]:
    instance = LocalUpstream().start()
    yield instance
    instance.stop()


@pytest.fixture
def alice(server: KeyholeServer, org_a: Keys) -> Iterator[Gateway]:
    instance = gateway(server.url, org_a.bearer)
    yield instance
    instance.client.close()


def _create(gw: Gateway, url: str, limit: Any) -> httpx.Response:
    return gw.client.post(
        "/api/connections",
        json={
            "name": f"limits-{uuid.uuid4().hex[:8]}",
            "type": "api",
            "configuration": {"url": url, "auth": BEARER, "proxy": limit},
            "validate": False,
        },
    )


def _limits(info: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    contract = info["requestContract"]
    return contract["rateLimitPerMinute"], contract["organizationRateLimitPerMinute"], contract["rateLimits"]


def _composio(server: KeyholeServer, keys: Keys) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"x-api-key": keys.user_api_key}, timeout=60)


def _composio_call(client: httpx.Client, connection: str, path: str) -> httpx.Response:
    return client.post(
        "/api/v3.1/tools/execute/proxy",
        json={"endpoint": path, "method": "GET", "connected_account_id": connection},
    )


def test_proxy_info_shows_the_enforced_limits(
    server: KeyholeServer, org_a: Keys, alice: Gateway, upstream: LocalUpstream
) -> None:
    default = alice.create(upstream.url())
    assert _limits(alice.info(default)) == (
        600,
        600_000,  # the organization default
        {
            "connection": {"perMinute": 600, "unlimited": False},
            "organization": {"perMinute": 600_000, "unlimited": False},
            "windowSeconds": 60,
            "sharedAcrossProcesses": False,  # in-memory counters: each process counts its own
        },
    )
    unlimited = alice.create(upstream.url(), proxy={"rate_limit_per_minute": None})
    per_minute, _, shown = _limits(alice.info(unlimited))
    assert per_minute is None
    assert shown["connection"] == {"perMinute": None, "unlimited": True}
    stored = alice.client.get(f"/api/connections/{unlimited}").json()["data"]["configuration"]["proxy"]
    assert stored["rate_limit_per_minute"] is None  # kept as sent, not replaced by the default
    biggest = alice.create(upstream.url(), proxy={"rate_limit_per_minute": MAX_LIMIT_PER_MINUTE})
    assert _limits(alice.info(biggest))[0] == MAX_LIMIT_PER_MINUTE
    # The official SDK reads "no limit" as None.
    sdk = Polytomic(base_url=server.url, token=org_a.user_api_key, max_retries=0)
    contract = sdk.connections.proxy.get_proxy_info(id=unlimited).data.request_contract
    assert contract is not None and contract.rate_limit_per_minute is None
    contract = sdk.connections.proxy.get_proxy_info(id=biggest).data.request_contract
    assert contract is not None and contract.rate_limit_per_minute == MAX_LIMIT_PER_MINUTE


def test_unlimited_counts_nothing_in_either_dialect(
    make_server: Callable[..., KeyholeServer], upstream: LocalUpstream
) -> None:
    parts = urlsplit(REDIS_URL)
    require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    server = make_server(KEYHOLE_REDIS_URL=REDIS_URL, KEYHOLE_ORG_RATE_LIMIT_PER_MINUTE="0")
    keys = server.bootstrap(f"org-unlimited-{uuid.uuid4().hex[:8]}", "u@u.test")
    polytomic = gateway(server.url, keys.bearer)
    connection = polytomic.create(upstream.url(), proxy={"rate_limit_per_minute": None})
    assert _limits(polytomic.info(connection)) == (
        None,
        None,
        {
            "connection": {"perMinute": None, "unlimited": True},
            "organization": {"perMinute": None, "unlimited": True},
            "windowSeconds": 60,
            "sharedAcrossProcesses": True,
        },
    )
    for n in range(150):
        response = polytomic.call(connection, method="GET", path=f"/free/{n}")
        assert response.status_code == 200, response.text
        assert "X-RateLimit-Limit" not in response.headers
    with _composio(server, keys) as composio:
        for n in range(50):
            response = _composio_call(composio, connection, f"/free/c{n}")
            assert response.status_code == 200, response.text
        assert upstream.hits("/free/") == 200
        # Nothing was counted for the organization or the connection.
        shared = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
        org_key = f"keyhole:limits:org:{keys.organization_id}"
        conn_key = f"keyhole:limits:conn:{keys.organization_id}:{connection}"
        try:
            assert shared.exists(org_key, conn_key) == 0
            # A limited connection of the same organization is still limited, in both dialects.
            limited = polytomic.create(upstream.url(), proxy={"rate_limit_per_minute": 2})
            assert [polytomic.call(limited, method="GET", path="/cap").status_code for _ in range(2)] == [
                200,
                200,
            ]
            refused = polytomic.call(limited, method="GET", path="/cap")
            assert refused.status_code == 429 and refused.json()["key"] == "connection_rate_limited"
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            also = _composio_call(composio, limited, "/cap")
            assert also.status_code == 429
            assert also.json()["error"]["slug"] == "ConnectionRateLimited"
            assert 1 <= int(also.headers["Retry-After"]) <= 60
            assert upstream.hits("/cap") == 2
            assert shared.exists(f"keyhole:limits:conn:{keys.organization_id}:{limited}") == 1
            assert shared.exists(org_key) == 0
        finally:
            shared.close()
            polytomic.client.close()


@pytest.mark.parametrize("limit", BAD_LIMITS, ids=repr)
def test_bad_limits_are_refused_and_nothing_is_written(
    alice: Gateway, upstream: LocalUpstream, limit: Any
) -> None:
    before = {item["id"] for item in alice.client.get("/api/connections").json()["data"]}
    created = _create(alice, upstream.url(), {"rate_limit_per_minute": limit})
    assert created.status_code == 422, created.text
    body = created.json()
    assert body["key"] == "invalid_configuration"
    assert body["metadata"]["errors"][0]["field"] == "/proxy/rate_limit_per_minute"
    after = {item["id"] for item in alice.client.get("/api/connections").json()["data"]}
    assert after == before

    connection = alice.create(upstream.url(), auth=BEARER, proxy={"rate_limit_per_minute": 5})
    updated = alice.client.put(
        f"/api/connections/{connection}",
        json={
            "name": "limits-update",
            "configuration": {
                "url": upstream.url(),
                "auth": {"type": "bearer", "token": "[REDACTED]"},
                "proxy": {"rate_limit_per_minute": limit},
            },
            "validate": False,
        },
    )
    assert updated.status_code == 422, updated.text
    assert updated.json()["metadata"]["errors"][0]["field"] == "/proxy/rate_limit_per_minute"
    assert _limits(alice.info(connection))[0] == 5
    shown = alice.client.get(f"/api/connections/{connection}").json()["data"]
    assert shown["configuration"]["proxy"]["rate_limit_per_minute"] == 5
    assert shown["name"] != "limits-update"


def test_a_limit_can_be_lifted_and_set_again(alice: Gateway, upstream: LocalUpstream) -> None:
    connection = alice.create(upstream.url(), auth=BEARER, proxy={"rate_limit_per_minute": 1})

    def update(limit: int | None) -> None:
        response = alice.client.put(
            f"/api/connections/{connection}",
            json={
                "name": "limits-lifted",
                "configuration": {
                    "url": upstream.url(),
                    "auth": {"type": "bearer", "token": "[REDACTED]"},
                    "proxy": {"rate_limit_per_minute": limit},
                },
                "validate": False,
            },
        )
        assert response.status_code == 200, response.text

    assert alice.call(connection, method="GET", path="/lift/0").status_code == 200
    assert alice.call(connection, method="GET", path="/lift/1").status_code == 429
    update(None)
    assert _limits(alice.info(connection))[0] is None
    assert [alice.call(connection, method="GET", path=f"/lift/{n}").status_code for n in range(2, 12)] == [
        200
    ] * 10
    update(3)
    # The ten calls made while unlimited were not counted; the first one, under the old limit, was.
    statuses = [alice.call(connection, method="GET", path=f"/lift/again/{n}").status_code for n in range(3)]
    assert statuses == [200, 200, 429]
    assert upstream.hits("/lift/") == 13


@pytest.mark.parametrize("value", ["-1", str(MAX_LIMIT_PER_MINUTE + 1), "lots", "1.5"])
def test_bad_organization_limits_stop_the_settings(value: str) -> None:
    with pytest.raises(ValidationError, match="org_rate_limit_per_minute"):
        Settings(org_rate_limit_per_minute=value)  # type: ignore[arg-type]


def test_organization_limit_bounds() -> None:
    assert Settings(org_rate_limit_per_minute=0).resolved_org_rate_limit_per_minute is None
    assert Settings().resolved_org_rate_limit_per_minute == 600_000
    biggest = Settings(org_rate_limit_per_minute=MAX_LIMIT_PER_MINUTE)
    assert biggest.resolved_org_rate_limit_per_minute == MAX_LIMIT_PER_MINUTE


def test_every_http_type_takes_the_same_limits() -> None:
    catalog = load_catalog()
    http_types = [kind for kind in catalog.all() if kind.http is not None]
    assert http_types
    for kind in http_types:
        schema = kind.schema["properties"]["proxy"]["properties"]["rate_limit_per_minute"]
        assert schema["type"] == ["integer", "null"], kind.id
        assert (schema["minimum"], schema["maximum"]) == (1, MAX_LIMIT_PER_MINUTE), kind.id
        assert kind.validate(_minimal(kind.id, None))["proxy"]["rate_limit_per_minute"] is None


def _minimal(type_id: str, limit: int | None) -> dict[str, Any]:
    base: dict[str, Any] = {"url": "https://api.example.com"} if type_id == "api" else {}
    secret = load_catalog().get(type_id).secret_fields
    for pointer in secret:
        if pointer.count("/") == 1:
            base[pointer[1:]] = "secret"
    return {**base, "proxy": {"rate_limit_per_minute": limit}}
