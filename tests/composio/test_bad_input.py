"""Malformed bodies, wrong types, unknown fields, oversized payloads: a 400 envelope, never a 500,
and nothing written."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from conftest import KeyholeServer, Keys

from .conftest import Composio, envelope

BAD_BODIES: list[tuple[str, str, Any]] = [
    ("/tools/execute/proxy", "POST", "{not json"),
    ("/tools/execute/proxy", "POST", []),
    ("/tools/execute/proxy", "POST", {"endpoint": "/x"}),
    ("/tools/execute/proxy", "POST", {"endpoint": 5, "method": "GET", "connected_account_id": "x"}),
    ("/tools/execute/proxy", "POST", {"endpoint": "/x", "method": 7, "connected_account_id": "x"}),
    ("/tools/execute/proxy", "POST", {"endpoint": "/x", "method": "GET", "surprise": 1}),
    ("/tools/execute/proxy", "POST", {"endpoint": "/x", "method": "GET", "parameters": [{"name": "a"}]}),
    (
        "/tools/execute/proxy",
        "POST",
        {"endpoint": "/x", "method": "GET", "parameters": [{"name": "a", "value": 1}]},
    ),
    (
        "/tools/execute/proxy",
        "POST",
        {"endpoint": "/x", "method": "GET", "parameters": [{"name": "a", "value": "1", "type": "cookie"}]},
    ),
    ("/tools/execute/proxy", "POST", {"endpoint": "/x", "method": "POST", "binary_body": {"base64": "%%%"}}),
    ("/tools/execute/proxy", "POST", {"endpoint": "/x", "method": "POST", "binary_body": {"nope": 1}}),
    (
        "/tools/execute/proxy",
        "POST",
        {"endpoint": "/x", "method": "GET", "custom_connection_data": {"authScheme": "MAGIC", "val": {}}},
    ),
    ("/connected_accounts", "POST", {"auth_config": {"id": "ac_x"}}),
    ("/connected_accounts", "POST", {"auth_config": {"id": 7}, "connection": {}}),
    ("/connected_accounts", "POST", {"auth_config": {"id": "ac_x"}, "connection": {"owner": "me"}}),
    ("/auth_configs", "POST", {"toolkit": "api"}),
    ("/auth_configs", "POST", {"toolkit": {"slug": "api"}, "auth_config": {"type": "use_magic"}}),
    ("/auth_configs", "POST", {"toolkit": {"slug": "api"}, "extra": True}),
    ("/tool_router/session", "POST", {"toolkits": {"enable": ["api"]}}),
    ("/tool_router/session", "POST", {"user_id": "u", "toolkits": {"enabled": ["api"]}}),
    ("/tool_router/session", "POST", {"user_id": "u", "toolkits": ["api"]}),
    ("/tool_router/session", "POST", {"user_id": "u", "unknown": {}}),
    ("/tool_router/session", "POST", {"user_id": "u", "connected_accounts": {"api": 5}}),
]


def _count(cio: Composio, path: str) -> int:
    response = cio.get(path, params={"limit": 1000})
    assert response.status_code == 200, response.text
    return int(response.json()["total_items"])


@pytest.mark.parametrize("prefix", ["/api/v3", "/api/v3.1"])
def test_bad_bodies_answer_400_and_write_nothing(cio_a: Composio, prefix: str) -> None:
    cio = Composio(cio_a.client, prefix)
    before = (_count(cio, "/connected_accounts"), _count(cio, "/auth_configs"))
    for path, method, body in BAD_BODIES:
        content = body if isinstance(body, str) else None
        response = cio.client.request(
            method,
            prefix + path,
            content=content,
            json=None if content is not None else body,
            headers={"content-type": "application/json"},
        )
        error = envelope(response, 400)
        assert error["request_id"] == response.headers["x-request-id"], (path, body)
    assert (_count(cio, "/connected_accounts"), _count(cio, "/auth_configs")) == before


def test_validation_errors_list_the_fields(cio_a: Composio) -> None:
    error = envelope(
        cio_a.post("/tool_router/session", {"user_id": "u", "toolkits": {"enabled": ["x"]}}), 400
    )
    assert error["slug"] == "HTTP_BadRequest" and error["code"] == 10400
    assert error["errors"] == ["Error in payload.toolkits: Invalid input"]
    error = envelope(cio_a.proxy({"endpoint": "/x", "method": "GET", "surprise": 1}), 400, "HTTP_BadRequest")
    assert any("surprise" in item for item in error["errors"])


def test_oversized_base64_is_refused_before_any_call(cio_a: Composio, httpbin_url: str, user_id: str) -> None:
    account = cio_a.account(httpbin_url, user_id=user_id)
    huge = base64.b64encode(b"\0" * (4 * 1024 * 1024 + 1)).decode()
    response = cio_a.proxy(
        {
            "endpoint": "/anything",
            "method": "POST",
            "connected_account_id": account,
            "binary_body": {"base64": huge, "content_type": "application/octet-stream"},
        }
    )
    envelope(response, 400, "BinaryBodyTooLarge")
    both = cio_a.proxy(
        {
            "endpoint": "/anything",
            "method": "POST",
            "connected_account_id": account,
            "body": {"a": 1},
            "binary_body": {"base64": "AAAA"},
        }
    )
    assert "exclusive" in " ".join(envelope(both, 400, "HTTP_BadRequest")["errors"])


def test_bad_query_parameters(cio_a: Composio) -> None:
    envelope(cio_a.get("/connected_accounts", params={"limit": "many"}), 400)
    envelope(cio_a.get("/connected_accounts", params={"limit": "0"}), 400)
    envelope(cio_a.get("/connected_accounts", params={"cursor": "!!"}), 400)
    envelope(cio_a.get("/connected_accounts", params={"statuses": "SLEEPY"}), 400)
    envelope(cio_a.get("/auth_configs", params={"show_disabled": "maybe"}), 400)
    envelope(cio_a.patch("/auth_configs/ac_missing/SOMETIMES", {}), 400)


def test_authentication_and_unknown_routes(server: KeyholeServer, org_a: Keys) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        envelope(anonymous.get("/api/v3.1/toolkits"), 401)
        envelope(anonymous.get("/api/v3/toolkits", headers={"x-api-key": "kh_u_wrong"}), 401)
        assert (
            anonymous.get("/api/v3.1/toolkits", headers={"x-user-api-key": org_a.user_api_key}).status_code
            == 200
        )
        assert anonymous.get("/api/v3/toolkits", headers={"x-api-key": org_a.org_api_key}).status_code == 200
        missing = anonymous.get("/api/v3.1/no/such/route", headers={"x-request-id": "trace-123"})
        assert envelope(missing, 404)["request_id"] == "trace-123"
        assert missing.headers["x-request-id"] == "trace-123"
        wrong_method = anonymous.put("/api/v3/toolkits", headers={"x-api-key": org_a.user_api_key})
        envelope(wrong_method, 405)
        assert wrong_method.headers["allow"] == "GET, HEAD"
