"""The MCP endpoints on the wire, with a plain HTTP client: who may call them (the REST API's keys,
no foreign web origin, no partner key), what they refuse before the SDK sees a request (a
JSON-RPC error body, 401 with WWW-Authenticate), and what no request body can make them answer
(a 5xx)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import KeyholeServer
from foundation.helpers import basic

from .conftest import Org
from .support import TOOLS

HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-11-25",
}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
MAX_BODY = 4 * 1024 * 1024


@pytest.fixture
def http(mserver: KeyholeServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mserver.url, headers=HEADERS, timeout=60) as client:
        yield client


def assert_refused(response: httpx.Response, status: int, key: str) -> dict[str, Any]:
    """A refusal before the SDK: ``status`` with a JSON-RPC error naming ``key``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None, body
    assert body["error"]["code"] == -32000, body
    assert body["error"]["data"] == {"key": key}, body
    assert body["error"]["message"].startswith(f"{key}: "), body
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
    return dict(body["error"])


def assert_tools_listed(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == 1 and "error" not in body, body
    assert [tool["name"] for tool in body["result"]["tools"]] == list(TOOLS)


# -- who may call --------------------------------------------------------------------------------


def test_no_key_is_401_with_www_authenticate(http: httpx.Client) -> None:
    assert_refused(http.post("/mcp", json=LIST), 401, "missing_credentials")


@pytest.mark.parametrize(
    "credentials",
    [
        {"Authorization": "Bearer kh_u_" + "x" * 43},
        {"Authorization": "Bearer"},
        {"Authorization": "Token abc"},
        {"Authorization": "Basic !!!"},
        {"x-api-key": "not-a-key"},
        {"Authorization": "Bearer " + "k" * 600},
    ],
    ids=["unknown bearer", "empty bearer", "other scheme", "bad basic", "unknown x-api-key", "long bearer"],
)
def test_a_bad_key_is_401(http: httpx.Client, credentials: dict[str, str]) -> None:
    response = http.post("/mcp", json=LIST, headers=credentials)
    assert response.status_code == 401, response.text
    body = response.json()
    assert_refused(response, 401, body["error"]["data"]["key"])
    assert body["error"]["data"]["key"] in ("invalid_api_key", "invalid_authorization", "missing_credentials")


def test_a_wrong_key_for_an_organization_is_401(http: httpx.Client, acme: Org, rival: Org) -> None:
    assert_refused(
        http.post("/mcp", json=LIST, headers=basic(acme.keys.organization_id, "kh_o_" + "x" * 43)),
        401,
        "invalid_api_key",
    )
    # Another organization's key under this organization's id is no key of this organization.
    response = http.post("/mcp", json=LIST, headers=basic(acme.keys.organization_id, rival.keys.org_api_key))
    assert response.status_code in (401, 403), response.text
    assert response.json()["error"]["code"] == -32000


@pytest.mark.parametrize(
    "spelling", ["bearer user key", "basic org key", "x-api-key user key", "x-api-key org key"]
)
def test_the_rest_key_spellings_all_work(http: httpx.Client, acme: Org, spelling: str) -> None:
    keys = acme.keys
    credentials = {
        "bearer user key": keys.bearer,
        "basic org key": keys.basic,
        "x-api-key user key": {"x-api-key": keys.user_api_key},
        "x-api-key org key": {"x-api-key": keys.org_api_key},
    }[spelling]
    assert_tools_listed(http.post("/mcp", json=LIST, headers=credentials))


def test_a_partner_key_is_403(http: httpx.Client, mserver: KeyholeServer) -> None:
    suffix = uuid.uuid4().hex[:8]
    result = mserver.cli(
        "bootstrap", "--org", f"partner-{suffix}", "--user", f"owner@{suffix}.test", "--partner"
    )
    minted = json.loads(result.stdout.strip().splitlines()[-1])
    partner_key = minted["partner_api_key"]
    for credentials in (
        {"Authorization": f"Bearer {partner_key}"},
        {"x-api-key": partner_key},
        basic(minted["organization_id"], partner_key),
    ):
        assert_refused(http.post("/mcp", json=LIST, headers=credentials), 403, "partner_key_not_allowed")
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": TOOLS[0], "arguments": {}}}
    assert_refused(
        http.post("/mcp", json=call, headers={"Authorization": f"Bearer {partner_key}"}),
        403,
        "partner_key_not_allowed",
    )


# -- origins -------------------------------------------------------------------------------------


def test_a_foreign_origin_is_refused(http: httpx.Client, mserver: KeyholeServer, acme: Org) -> None:
    port = mserver.url.rsplit(":", 1)[1]
    for origin in (
        "https://evil.example",
        "null",
        f"http://localhost:{port}",  # the same server under another name is another origin
        f"https://127.0.0.1:{port}",
        f"http://127.0.0.1:{int(port) + 1}",
        f"{mserver.url}.evil.example",
        "",
    ):
        response = http.post("/mcp", json=LIST, headers={**acme.keys.bearer, "Origin": origin})
        error = assert_refused(response, 403, "origin_not_allowed")
        assert "origin" in error["message"]


def test_the_servers_own_origin_is_allowed(http: httpx.Client, mserver: KeyholeServer, acme: Org) -> None:
    for origin in (mserver.url, mserver.url + "/"):
        assert_tools_listed(http.post("/mcp", json=LIST, headers={**acme.keys.bearer, "Origin": origin}))


def test_a_foreign_origin_is_refused_before_the_key_is_looked_at(http: httpx.Client) -> None:
    assert_refused(
        http.post("/mcp", json=LIST, headers={"Origin": "https://evil.example"}), 403, "origin_not_allowed"
    )


# -- what the endpoint accepts -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_only_post_is_allowed(http: httpx.Client, acme: Org, method: str) -> None:
    response = http.request(method, "/mcp", headers=acme.keys.bearer)
    assert response.status_code == 405, response.text
    assert "POST" in response.headers["allow"]


def test_a_body_over_4_mib_is_413(http: httpx.Client, acme: Org) -> None:
    padded = json.dumps(LIST).encode()
    just_fits = padded[:-1] + b" " * (MAX_BODY - len(padded)) + b"}"
    assert len(just_fits) == MAX_BODY
    assert_tools_listed(http.post("/mcp", content=just_fits, headers=acme.keys.bearer))
    too_long = padded[:-1] + b" " * (MAX_BODY + 1 - len(padded)) + b"}"
    assert http.post("/mcp", content=too_long, headers=acme.keys.bearer).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds on what arrives
        yield padded[:-1]
        for _ in range(MAX_BODY // 65_536 + 1):
            yield b" " * 65_536
        yield b"}"

    assert http.post("/mcp", content=chunks(), headers=acme.keys.bearer).status_code == 413


def assert_json_rpc_refusal(response: httpx.Response, *statuses: int) -> None:
    """A refusal the OpenAPI document lists for the MCP endpoints: a JSON-RPC error body."""
    assert response.status_code in statuses, response.text
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None and isinstance(body["error"]["code"], int), body


@pytest.mark.parametrize("content_type", [None, "text/plain"])
def test_a_body_that_is_not_json_by_its_type_is_refused_as_documented(
    http: httpx.Client, acme: Org, content_type: str | None
) -> None:
    headers = {**acme.keys.bearer, "Content-Type": content_type or ""}
    request = http.build_request("POST", "/mcp", content=json.dumps(LIST).encode(), headers=headers)
    if content_type is None:
        del request.headers["Content-Type"]
    assert_json_rpc_refusal(http.send(request), 400, 415)


def test_a_body_over_4_mib_is_refused_as_documented(http: httpx.Client, acme: Org) -> None:
    too_long = b"{" + b" " * MAX_BODY + b"}"
    assert_json_rpc_refusal(http.post("/mcp", content=too_long, headers=acme.keys.bearer), 413)


NOT_JSON_RPC: list[bytes] = [
    b"",
    b"hello",
    b"{",
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}',
    b"\xff\xfe\x00garbage",
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}, "x": "\xff"}',
    b"[" * 100_000,
    b"null",
    b"42",
    b'"tools/list"',
    b"[]",
    b"[1, 2]",
    b'{"a": 1}',
    b'{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}',
    b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/list"}',
    b'{"jsonrpc": "2.0", "id": 1, "method": 5}',
    json.dumps([LIST, LIST]).encode(),  # a batch
    b'{"jsonrpc": "2.0", "id": 1, "result": {}}',  # a response, posted
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 5}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "keyhole_list_connections", '
    b'"arguments": []}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "keyhole_list_connections", '
    b'"arguments": "x"}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "keyhole_list_connections", '
    b'"arguments": {"search": "\\ud800"}}}',  # a lone surrogate
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "keyhole_nope", '
    b'"arguments": {}}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "nope/nope", "params": {}}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"limit": ' + b"9" * 5000 + b"}}",
]


@pytest.mark.parametrize("body", NOT_JSON_RPC, ids=range(len(NOT_JSON_RPC)))
def test_a_body_that_is_not_a_json_rpc_request_is_a_client_error(
    http: httpx.Client, acme: Org, body: bytes
) -> None:
    response = http.post("/mcp", content=body, headers=acme.keys.bearer)
    assert response.status_code < 500, response.text
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        decoded = None
    if response.status_code == 200:  # a JSON-RPC error for a request that was one in shape
        answer = response.json()
        assert answer["jsonrpc"] == "2.0" and "error" in answer and "result" not in answer, answer
    elif response.status_code == 202:
        # Acknowledged without an answer: a notification or a posted response, or (the SDK's
        # reading) a message whose id is no request id; never a request that is owed an answer.
        owed = (
            isinstance(decoded, dict)
            and "method" in decoded
            and isinstance(decoded.get("id"), int | str)
            and not isinstance(decoded.get("id"), bool)
        )
        assert not owed, body[:200]
    else:
        assert 400 <= response.status_code < 500, response.text


def test_nothing_reaches_the_tools_without_a_key(http: httpx.Client) -> None:
    # Not even an error that would tell which tools exist.
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "keyhole_nope", "arguments": {}},
    }
    assert_refused(http.post("/mcp", json=call), 401, "missing_credentials")
    assert_refused(http.post("/mcp", content=b"hello"), 401, "missing_credentials")


# -- tool router session URLs --------------------------------------------------------------------


@pytest.mark.parametrize(
    "session_id", ["trs_unknown", "00000000-0000-0000-0000-000000000000", "x" * 200, "%2e%2e"]
)
def test_an_unknown_tool_router_session_is_404(http: httpx.Client, acme: Org, session_id: str) -> None:
    response = http.post(f"/tool_router/{session_id}/mcp", json=LIST, headers=acme.keys.bearer)
    assert response.status_code == 404, response.text
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32000, body
    assert body["error"]["message"].startswith(body["error"]["data"]["key"] + ": "), body


def test_a_tool_router_session_url_needs_a_key_first(http: httpx.Client) -> None:
    # 401 whether or not the session exists: the URL alone tells nothing.
    assert_refused(http.post("/tool_router/trs_unknown/mcp", json=LIST), 401, "missing_credentials")
