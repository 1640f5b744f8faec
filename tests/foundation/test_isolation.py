"""Tenant isolation: another organization cannot see or touch a connection, on any route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import KeyholeServer, Keys

from .helpers import UNKNOWN_ID, assert_envelope, connection_ids, proxy_call

SECRET = "tok-ISOLATION-SECRET-91c2"


@pytest.fixture(scope="module")
def owned(server: KeyholeServer, org_a: Keys, httpbin_url: str) -> Iterator[str]:
    """An `api` connection of org_a."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        created = client.post(
            "/api/connections",
            json={
                "name": "isolation target",
                "type": "api",
                "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": SECRET}},
            },
            headers=org_a.bearer,
        )
        assert created.status_code == 200, created.text
        connection_id = created.json()["data"]["id"]
        yield connection_id
        client.delete(f"/api/connections/{connection_id}", headers=org_a.bearer)


def routes(connection_id: str, httpbin_url: str) -> dict[str, tuple[str, str, Any]]:
    """Every route that addresses a connection: (method, path, JSON body or None)."""
    base = f"/api/connections/{connection_id}"
    return {
        "get": ("GET", base, None),
        "update": (
            "PUT",
            base,
            {"name": "stolen", "configuration": {"url": httpbin_url}, "validate": False},
        ),
        "delete": ("DELETE", base, None),
        "delete-force": ("DELETE", base + "?force=true", None),
        "test-with-id": (
            "POST",
            "/api/connections/test",
            {"type": "api", "configuration": {}, "connection_id": connection_id},
        ),
        "parameter-values": ("GET", base + "/parameter_values", None),
        "type-parameter-values": (
            "POST",
            "/api/connection_types/api/parameter_values",
            {"field": "database", "connection_id": connection_id},
        ),
        "proxy": ("POST", base + "/proxy", {"request": {"method": "GET", "path": "/bearer"}}),
        "proxy-info": ("GET", base + "/proxy/info", None),
        "proxy-settings-get": ("GET", base + "/proxy/settings", None),
        "proxy-settings-put": ("PUT", base + "/proxy/settings", {"enabled": False}),
        "proxy-calls": ("GET", base + "/proxy/calls", None),
    }


ROUTES = list(routes("x", "http://x"))


def call(api: httpx.Client, headers: dict[str, str], route: tuple[str, str, Any]) -> httpx.Response:
    method, path, body = route
    if body is None:
        return api.request(method, path, headers=headers)
    return api.request(method, path, json=body, headers=headers)


def without_id(body: dict[str, Any]) -> dict[str, Any]:
    metadata = {key: value for key, value in body.get("metadata", {}).items() if key != "id"}
    return {**body, "metadata": metadata}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("credentials", ["bearer", "basic"])
def test_foreign_connection_is_indistinguishable_from_a_missing_one(
    route: str,
    credentials: str,
    api: httpx.Client,
    org_a: Keys,
    org_b: Keys,
    owned: str,
    httpbin_url: str,
) -> None:
    intruder = org_b.bearer if credentials == "bearer" else org_b.basic
    foreign = call(api, intruder, routes(owned, httpbin_url)[route])
    missing = call(api, intruder, routes(UNKNOWN_ID, httpbin_url)[route])
    foreign_body = assert_envelope(foreign, 404)
    missing_body = assert_envelope(missing, 404)
    assert without_id(foreign_body) == without_id(missing_body)
    assert SECRET not in foreign.text

    # Nothing changed for the owner: same name, still enabled, secret still used upstream.
    mine = api.get(f"/api/connections/{owned}", headers=org_a.bearer)
    assert mine.status_code == 200, mine.text
    assert mine.json()["data"]["name"] == "isolation target"
    settings = api.get(f"/api/connections/{owned}/proxy/settings", headers=org_a.bearer)
    assert settings.json()["data"]["enabled"] is True


def test_foreign_connection_is_not_listed(api: httpx.Client, org_a: Keys, org_b: Keys, owned: str) -> None:
    assert owned not in connection_ids(api, org_b.bearer)
    assert owned not in connection_ids(api, org_b.basic)
    for item in api.get("/api/connections", headers=org_b.bearer).json()["data"]:
        assert item["organization_id"] == org_b.organization_id


def test_owner_sees_its_connection_with_either_key(
    api: httpx.Client, org_a: Keys, owned: str, httpbin_url: str
) -> None:
    assert owned in connection_ids(api, org_a.bearer)
    assert owned in connection_ids(api, org_a.basic)
    fetched = api.get(f"/api/connections/{owned}", headers=org_a.basic)
    assert fetched.status_code == 200
    assert fetched.json()["data"]["organization_id"] == org_a.organization_id
    # The owner's proxy call (org key) still authenticates upstream with the stored secret.
    response = proxy_call(api, owned, org_a.basic, "/bearer")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == 200
    info = api.get(f"/api/connections/{owned}/proxy/info", headers=org_a.bearer)
    assert info.status_code == 200
    assert info.json()["data"]["connectionId"] == owned
    assert SECRET not in info.text


def test_a_connection_created_by_one_org_key_is_owned_by_that_org(
    api: httpx.Client, org_a: Keys, org_b: Keys, httpbin_url: str
) -> None:
    created = api.post(
        "/api/connections",
        json={"name": "made with org key", "type": "api", "configuration": {"url": httpbin_url}},
        headers=org_b.basic,
    )
    assert created.status_code == 200, created.text
    connection_id = created.json()["data"]["id"]
    try:
        assert created.json()["data"]["organization_id"] == org_b.organization_id
        assert connection_id in connection_ids(api, org_b.bearer)
        assert connection_id not in connection_ids(api, org_a.bearer)
        assert_envelope(api.get(f"/api/connections/{connection_id}", headers=org_a.basic), 404)
    finally:
        assert api.delete(f"/api/connections/{connection_id}", headers=org_b.basic).status_code == 204
