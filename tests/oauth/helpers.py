"""Small client-side helpers shared by the OAuth tests."""

from __future__ import annotations

from typing import Any

import httpx

from conftest import Keys

from .conftest import AuthServer, follow_connect

REDIRECT = "https://app.example.test/after-connect?from=keyhole"


def connect(base: str, keys: Keys, authserver: AuthServer, **extra: Any) -> dict[str, Any]:
    body = {
        "name": extra.pop("name", "Test API"),
        "redirect_url": REDIRECT,
        "type": "api",
        "configuration": {"url": authserver.url, "auth": authserver.auth()},
        **extra,
    }
    response = httpx.post(base + "/api/connections/connect/", json=body, headers=keys.bearer, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


def connected(base: str, keys: Keys, authserver: AuthServer) -> str:
    """A connection through the full connect flow; returns its id."""
    started = connect(base, keys, authserver)
    done = follow_connect(started["redirect_url"])
    assert done.status_code == 302, done.text
    location = done.headers["location"]
    assert location.startswith(REDIRECT) and "status=success" in location
    return location.split("connection_id=")[1].split("&")[0]


def reauthorize(base: str, keys: Keys, connection_id: str) -> None:
    """Run the connect flow again for an existing connection (its callback lands on ``base``)."""
    started = httpx.post(
        base + "/api/connections/connect/",
        json={"name": "again", "redirect_url": REDIRECT, "connection": connection_id},
        headers=keys.bearer,
        timeout=30,
    )
    assert started.status_code == 200, started.text
    done = follow_connect(started.json()["data"]["redirect_url"])
    assert done.status_code == 302 and "status=success" in done.headers["location"], done.text


def proxy(base: str, keys: Keys, connection_id: str, path: str = "/api/me") -> httpx.Response:
    return httpx.post(
        f"{base}/api/connections/{connection_id}/proxy",
        json={"request": {"method": "GET", "path": path}},
        headers=keys.bearer,
        timeout=60,
    )
