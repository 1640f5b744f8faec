"""The synchronous proxy route is served ahead of the framework: it must answer exactly as the
framework would (context headers, envelopes, limits) and leave every other route to it."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from .support import Gateway, LocalUpstream


@pytest.fixture(scope="module")
def plain(gw_a: Gateway, httpbin_url: str) -> str:
    return gw_a.create(httpbin_url, auth={"type": "bearer", "token": "fast-path-token"})


def _post(gw: Gateway, path: str, **kwargs: object) -> httpx.Response:
    return gw.client.post(path, **kwargs)  # type: ignore[arg-type]


def test_success_carries_the_request_context(gw_a: Gateway, plain: str) -> None:
    response = _post(
        gw_a,
        f"/api/connections/{plain}/proxy",
        json={"request": {"method": "GET", "path": "/get"}},
        headers={"X-Request-Id": "caller-id-1", "X-Polytomic-Version": "2024-10-01"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "caller-id-1"
    assert response.headers["x-polytomic-version"] == "2024-10-01"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.json()["data"]["status"] == 200


def test_insane_context_values_are_replaced(gw_a: Gateway, plain: str) -> None:
    response = _post(
        gw_a,
        f"/api/connections/{plain}/proxy",
        json={"request": {"method": "GET", "path": "/get"}},
        headers={"X-Request-Id": "has spaces & more", "X-Polytomic-Version": "latest"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] != "has spaces & more"
    assert len(response.headers["x-request-id"]) == 32
    assert response.headers["x-polytomic-version"] == "2025-09-18"


@pytest.mark.parametrize(
    ("headers", "status", "key"),
    [
        ({"Authorization": ""}, 401, "missing_credentials"),
        ({"Authorization": "Token abc"}, 401, "invalid_authorization"),
        ({"Authorization": "Bearer not-a-key"}, 401, "invalid_api_key"),
    ],
)
def test_authentication_failures_use_the_envelope(
    server: object, plain: str, headers: dict[str, str], status: int, key: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:  # type: ignore[attr-defined]
        response = client.post(
            f"/api/connections/{plain}/proxy",
            json={"request": {"method": "GET", "path": "/get"}},
            headers=headers,
        )
    assert response.status_code == status
    assert response.json()["key"] == key
    assert response.headers["x-request-id"]
    assert response.headers["x-polytomic-version"]


def test_first_of_repeated_authorization_headers_counts(server: object, org_a: object, plain: str) -> None:
    bearer = org_a.bearer["Authorization"]  # type: ignore[attr-defined]
    headers = [("Authorization", bearer), ("Authorization", "Bearer wrong")]
    with httpx.Client(base_url=server.url, timeout=30) as client:  # type: ignore[attr-defined]
        first_good = client.post(
            f"/api/connections/{plain}/proxy",
            json={"request": {"method": "GET", "path": "/get"}},
            headers=headers,
        )
        first_bad = client.post(
            f"/api/connections/{plain}/proxy",
            json={"request": {"method": "GET", "path": "/get"}},
            headers=list(reversed(headers)),
        )
    assert first_good.status_code == 200
    assert first_bad.status_code == 401


def test_unknown_and_foreign_connections_are_404(gw_a: Gateway, gw_b: Gateway, plain: str) -> None:
    for gw, connection in ((gw_a, str(uuid.uuid4())), (gw_b, plain)):
        response = _post(
            gw, f"/api/connections/{connection}/proxy", json={"request": {"method": "GET", "path": "/"}}
        )
        assert response.status_code == 404
        assert response.json()["status"] == 404
        assert response.headers["x-polytomic-version"]


def test_oversized_body_is_refused_before_it_is_read(gw_a: Gateway, fresh_upstream: LocalUpstream) -> None:
    connection = gw_a.create(fresh_upstream.url(), proxy={"max_request_body_bytes": 1024})
    huge = json.dumps({"request": {"method": "POST", "path": "/x", "body": "a" * 200_000}})

    def chunked() -> object:
        for start in range(0, len(huge), 4096):
            yield huge[start : start + 4096].encode()

    declared = _post(gw_a, f"/api/connections/{connection}/proxy", content=huge)
    streamed = _post(gw_a, f"/api/connections/{connection}/proxy", content=chunked())
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["key"] == "body_too_large"
        assert response.headers["x-request-id"]
    assert fresh_upstream.hits("/") == 0


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/connections/{id}/proxy", 405),
        ("PUT", "/api/connections/{id}/proxy", 405),
        ("POST", "/api/connections//proxy", 404),
        ("POST", "/api/connections/{id}/extra/proxy", 404),
        ("POST", "/api/connections/{id}/proxyx", 404),
    ],
)
def test_neighbouring_routes_are_left_to_the_framework(
    gw_a: Gateway, plain: str, method: str, path: str, status: int
) -> None:
    response = gw_a.client.request(
        method, path.format(id=plain), json={"request": {"method": "GET", "path": "/"}}
    )
    assert response.status_code == status, response.text
    assert response.json()["status"] == status
    assert response.headers["x-request-id"]
