"""A method a path does not serve: 405 in the path's dialect, ``Allow`` naming what it serves."""

from __future__ import annotations

import httpx
import pytest

from conftest import KeyholeServer, Keys


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/api/connections", "GET, HEAD, POST"),
        ("PATCH", "/api/connections/test", "POST"),
        ("TRACE", "/healthz", "GET, HEAD"),
        ("POST", "/docs", "GET, HEAD"),
    ],
)
def test_polytomic_and_own_routes(
    server: KeyholeServer, org_a: Keys, method: str, path: str, allowed: str
) -> None:
    response = httpx.request(method, server.url + path, headers=org_a.bearer, timeout=30)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    assert response.json()["key"] == "method_not_allowed"


@pytest.mark.parametrize("prefix", ["/api/v3", "/api/v3.1"])
def test_composio_routes(server: KeyholeServer, org_a: Keys, prefix: str) -> None:
    response = httpx.get(server.url + prefix + "/tools/execute/proxy", headers=org_a.bearer, timeout=30)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    error = response.json()["error"]
    assert (error["status"], error["slug"]) == (405, "MethodNotAllowed")
