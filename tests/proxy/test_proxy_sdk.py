"""The official Polytomic SDK drives the proxy end to end against httpbin (spec §2.1-2.3, §4)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from polytomic import ConnectionProxyCall, Polytomic
from polytomic.errors import BadRequestError, ForbiddenError, NotFoundError, TooManyRequestsError

from .support import TOKEN, Gateway


@pytest.fixture(scope="module")
def sdk(server: Any, org_a: Any) -> Polytomic:
    return Polytomic(base_url=server.url, token=org_a.user_api_key)


@pytest.fixture(scope="module")
def bearer_connection(gw_a: Gateway, httpbin_url: str) -> str:
    return gw_a.create(httpbin_url, auth={"type": "bearer", "token": TOKEN})


def _echo(body: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def test_happy_path_injects_credential_headers_and_query(sdk: Polytomic, bearer_connection: str) -> None:
    result = sdk.connections.proxy.execute_proxy(
        id=bearer_connection,
        request=ConnectionProxyCall(method="GET", path="/anything", query={"a": 1}, headers={"X-Test": "1"}),
    )
    data = result.data
    assert data is not None
    assert data.status == 200
    assert isinstance(data.body, str)
    assert data.content_type == "application/json"
    assert data.truncated is False
    assert isinstance(data.latency_ms, int) and data.latency_ms >= 0
    assert data.proxy_call_id
    assert all(isinstance(value, str) for value in (data.headers or {}).values())
    echo = _echo(data.body)
    assert echo["method"] == "GET"
    assert echo["args"] == {"a": "1"}
    assert echo["headers"]["X-Test"] == "1"
    # The credential was injected upstream; the echo of it comes back scrubbed.
    assert echo["headers"]["Authorization"] == "Bearer [REDACTED]"
    assert TOKEN not in data.body
    assert (data.model_extra or {}).get("bodyEncoding") == "utf-8"


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ({"a": 1, "nested": {"b": [1, 2]}}, "json", {"a": 1, "nested": {"b": [1, 2]}}),
        ([1, "two", None], "json", [1, "two", None]),
        ("raw text, not JSON", "data", "raw text, not JSON"),
        (None, "data", ""),
    ],
    ids=["object", "array", "string", "null"],
)
def test_body_variants_reach_the_upstream(
    sdk: Polytomic, bearer_connection: str, body: Any, field: str, expected: Any
) -> None:
    result = sdk.connections.proxy.execute_proxy(
        id=bearer_connection, request=ConnectionProxyCall(method="POST", path="/anything", body=body)
    )
    assert result.data is not None and result.data.body is not None
    echo = _echo(result.data.body)
    assert echo[field] == expected
    content_type = echo["headers"].get("Content-Type")
    if isinstance(body, dict | list):
        assert content_type == "application/json"
    elif isinstance(body, str):
        assert content_type == "text/plain; charset=utf-8"
    else:  # no body at all (aiohttp still labels an empty POST application/octet-stream)
        assert echo["json"] is None
        assert echo["headers"].get("Content-Length", "0") == "0"
        assert content_type in (None, "application/octet-stream")


def test_proxy_info_through_the_sdk(sdk: Polytomic, bearer_connection: str, httpbin_url: str) -> None:
    info = sdk.connections.proxy.get_proxy_info(id=bearer_connection).data
    assert info is not None
    assert info.connection_id == bearer_connection
    assert info.backend_type == "api"
    assert info.inherited_base is not None
    assert info.inherited_base.base_url == httpbin_url
    locked = info.inherited_base.locked_headers or []
    assert [(h.name, h.value, h.redacted) for h in locked] == [("Authorization", "[REDACTED]", True)]
    contract = info.request_contract
    assert contract is not None
    assert contract.allowed_methods == ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    blocked = contract.blocked_request_headers or []
    for name in (
        "Cookie",
        "Forwarded",
        "X-Forwarded-*",
        "X-Real-IP",
        "X-Original-URL",
        "X-HTTP-Method-Override",
    ):
        assert name in blocked
    assert "Set-Cookie" in (contract.blocked_response_headers or [])
    assert contract.max_response_body_bytes == 1_048_576
    assert contract.max_request_body_bytes == 262_144
    assert contract.rate_limit_per_minute == 600
    assert contract.timeout_ms == 30_000
    assert TOKEN not in info.model_dump_json()


def test_settings_round_trip_and_disabled_proxy_is_forbidden(sdk: Polytomic, gw_a: Gateway) -> None:
    connection = gw_a.create("http://127.0.0.1:9")
    proxy = sdk.connections.proxy
    settings = proxy.get_proxy_settings(id=connection).data
    assert settings is not None
    assert (settings.connection_id, settings.enabled, settings.supported) == (connection, True, True)
    assert settings.backend_type == "api"

    updated = proxy.update_proxy_settings(id=connection, enabled=False).data
    assert updated is not None and updated.enabled is False
    assert proxy.get_proxy_settings(id=connection).data.enabled is False

    with pytest.raises(ForbiddenError) as caught:
        proxy.execute_proxy(id=connection, request=ConnectionProxyCall(method="GET", path="/"))
    assert caught.value.status_code == 403
    assert caught.value.body.key == "proxy_disabled"

    assert proxy.update_proxy_settings(id=connection, enabled=True).data.enabled is True


def test_typed_errors(sdk: Polytomic, bearer_connection: str) -> None:
    proxy = sdk.connections.proxy
    unknown = str(uuid.uuid4())
    with pytest.raises(NotFoundError) as not_found:
        proxy.execute_proxy(id=unknown, request=ConnectionProxyCall(method="GET", path="/get"))
    assert not_found.value.body.key == "not_found"
    with pytest.raises(NotFoundError):
        proxy.get_proxy_info(id=unknown)
    with pytest.raises(NotFoundError):
        proxy.get_proxy_settings(id=unknown)

    with pytest.raises(BadRequestError) as locked:
        proxy.execute_proxy(
            id=bearer_connection,
            request=ConnectionProxyCall(method="GET", path="/get", headers={"Authorization": "Bearer mine"}),
        )
    assert locked.value.body.key == "locked_header"
    assert locked.value.body.metadata["header"] == "Authorization"


def test_too_many_requests_without_retries(server: Any, org_a: Any, gw_a: Gateway, httpbin_url: str) -> None:
    connection = gw_a.create(httpbin_url, proxy={"rate_limit_per_minute": 1})
    client = Polytomic(base_url=server.url, token=org_a.user_api_key, max_retries=0)
    call = ConnectionProxyCall(method="GET", path="/get")
    assert client.connections.proxy.execute_proxy(id=connection, request=call).data.status == 200
    with pytest.raises(TooManyRequestsError) as caught:
        client.connections.proxy.execute_proxy(id=connection, request=call)
    assert caught.value.status_code == 429
    assert caught.value.body.key == "connection_rate_limited"
    assert caught.value.headers is not None
    assert int(caught.value.headers["retry-after"]) >= 1
