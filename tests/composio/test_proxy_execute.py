"""Proxy execute over raw HTTP: inline credentials, uploads by URL, retry hints, prefixes."""

from __future__ import annotations

import base64
import socket
from typing import Any

import httpx
import pytest

from proxy.support import LocalUpstream

from .conftest import TOKEN, Composio, envelope

REDACTED = "[REDACTED]"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _inline(scheme: str, val: dict[str, object], toolkit: str = "api") -> dict[str, object]:
    return {"authScheme": scheme, "toolkitSlug": toolkit, "val": val}


def test_inline_credentials_per_scheme(cio_a: Composio, httpbin_url: str) -> None:
    def call(endpoint: str, scheme: str, val: dict[str, object]) -> dict[str, object]:
        return cio_a.ok(
            {
                "endpoint": endpoint,
                "method": "GET",
                "custom_connection_data": _inline(scheme, {"base_url": httpbin_url, **val}),
            }
        )

    assert call("/bearer", "OAUTH2", {"access_token": "at-1"})["data"] == {
        "authenticated": True,
        "token": REDACTED,
    }
    assert call("/bearer", "BEARER_TOKEN", {"token": "bt-1"})["status"] == 200
    assert call("/basic-auth/u/p", "BASIC", {"username": "u", "password": "p"})["status"] == 200
    assert call("/bearer", "NO_AUTH", {})["status"] == 401
    header = call("/headers", "API_KEY", {"api_key": "k-1"})["data"]
    assert header["headers"]["X-Api-Key"] == REDACTED  # type: ignore[index]
    query = call("/get", "API_KEY", {"api_key": "k-2", "api_key_query": "key"})["data"]
    assert query["args"] == {"key": REDACTED}  # type: ignore[index]
    envelope(
        cio_a.proxy(
            {"endpoint": "/x", "method": "GET", "custom_connection_data": _inline("BEARER_TOKEN", {})}
        ),
        400,
        "InvalidConnectionData",
    )
    envelope(
        cio_a.proxy(
            {
                "endpoint": "/x",
                "method": "GET",
                "custom_connection_data": _inline(
                    "BEARER_TOKEN", {"token": "t", "base_url": httpbin_url}, "github"
                ),
            }
        ),
        400,
        "InvalidConnectionData",
    )
    envelope(
        cio_a.proxy({"endpoint": "/x", "method": "GET", "custom_connection_data": _inline("SAML", {})}),
        400,
        "UnsupportedAuthScheme",
    )


def test_upload_by_url_goes_through_egress(cio_a: Composio, httpbin_url: str, user_id: str) -> None:
    account = cio_a.account(httpbin_url, user_id=user_id)
    uploaded = cio_a.ok(
        {
            "endpoint": "/anything",
            "method": "POST",
            "connected_account_id": account,
            "binary_body": {"url": f"{httpbin_url}/bytes/64?seed=3", "content_type": "application/x-test"},
        }
    )
    echoed = uploaded["data"]
    assert echoed["headers"]["Content-Type"] == "application/x-test"
    assert echoed["headers"]["Content-Length"] == "64"
    for url in ("http://169.254.169.254/latest/meta-data", "http://10.0.0.1/x", f"{httpbin_url}/redirect/1"):
        refused = cio_a.proxy(
            {
                "endpoint": "/anything",
                "method": "POST",
                "connected_account_id": account,
                "binary_body": {"url": url},
            }
        )
        envelope(refused, 400, "BinaryBodyFetchFailed")
    big = cio_a.proxy(
        {
            "endpoint": "/anything",
            "method": "POST",
            "connected_account_id": account,
            "binary_body": {"base64": base64.b64encode(b"x" * 300_000).decode()},
        }
    )
    assert "maxRequestBodyBytes" in envelope(big, 400, "RequestBodyTooLarge")["message"]


def test_upstream_failures_say_whether_to_retry(cio_a: Composio, user_id: str) -> None:
    account = cio_a.account(f"http://127.0.0.1:{_closed_port()}", user_id=user_id)
    post = cio_a.proxy(
        {"endpoint": "/x", "method": "POST", "connected_account_id": account, "body": {"a": 1}}
    )
    envelope(post, 502)
    assert post.headers["x-should-retry"] == "false"
    get = cio_a.proxy({"endpoint": "/x", "method": "GET", "connected_account_id": account})
    envelope(get, 502)
    assert "x-should-retry" not in get.headers


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "OPTIONS", "PROPFIND", "", "G ET"])
def test_methods_outside_the_contract_are_refused_before_anything_is_sent(
    cio_a: Composio, httpbin_url: str, user_id: str, method: str
) -> None:
    account = cio_a.account(httpbin_url, user_id=user_id)
    error = envelope(
        cio_a.proxy({"endpoint": "/anything", "method": method, "connected_account_id": account}), 400
    )
    assert error["slug"] == "InvalidProxyRequest"
    assert error["message"] == "method must be one of GET, HEAD, POST, PUT, PATCH, DELETE"


def test_path_rules_apply_once_in_core(cio_a: Composio, httpbin_url: str, user_id: str) -> None:
    account = cio_a.account(f"{httpbin_url}/anything/base", user_id=user_id)
    for endpoint in ("/../etc", "/%2e%2e/x", "//evil.example/x", "/a\\b"):
        response = cio_a.proxy({"endpoint": endpoint, "method": "GET", "connected_account_id": account})
        error = envelope(response, 400)
        assert "request.path" not in error["message"] and "endpoint" in error["message"]
    joined = cio_a.ok({"endpoint": "/x?y=1", "method": "GET", "connected_account_id": account})
    assert joined["data"]["url"] == f"{httpbin_url}/anything/base/x?y=1"
    # An absolute URL on the same origin replaces the whole base URL; its path stays under the base's.
    absolute = cio_a.ok(
        {"endpoint": f"{httpbin_url}/anything/base/y?z=2", "method": "GET", "connected_account_id": account}
    )
    assert absolute["data"]["url"] == f"{httpbin_url}/anything/base/y?z=2"
    outside = cio_a.proxy(
        {"endpoint": f"{httpbin_url}/get", "method": "GET", "connected_account_id": account}
    )
    envelope(outside, 400, "OriginMismatch")
    mismatch = cio_a.proxy(
        {
            "endpoint": f"{httpbin_url.replace('127.0.0.1', 'localhost')}/get",
            "method": "GET",
            "connected_account_id": account,
        }
    )
    envelope(mismatch, 400, "OriginMismatch")


def test_both_prefixes_serve_the_same_accounts(cio_a: Composio, httpbin_url: str, user_id: str) -> None:
    account = cio_a.account(httpbin_url, user_id=user_id)
    v3 = Composio(cio_a.client, "/api/v3")
    result = v3.ok({"endpoint": "/get", "method": "GET", "connected_account_id": account})
    assert result["status"] == 200 and TOKEN not in str(result)
    response = v3.proxy({"endpoint": "/get", "method": "GET", "connected_account_id": account})
    assert response.headers.get("x-request-id") and "x-polytomic-version" not in response.headers
    assert v3.get(f"/connected_accounts/{account}").json()["id"] == account


def test_binary_answers_stream_to_a_download_url(cio_a: Composio, httpbin_url: str, user_id: str) -> None:
    account = cio_a.account(httpbin_url, user_id=user_id)
    expected = httpx.get(f"{httpbin_url}/bytes/200000?seed=7", timeout=30).content
    result = cio_a.ok({"endpoint": "/bytes/200000?seed=7", "method": "GET", "connected_account_id": account})
    binary = result["binary_data"]
    assert result["status"] == 200 and result["data"] == {}
    assert binary["content_type"] == "application/octet-stream" and binary["size"] == len(expected)
    assert binary["expires_at"].endswith("Z")
    with httpx.Client(timeout=30) as anonymous:  # the URL is the only credential needed
        fetched = anonymous.get(binary["url"])
        assert fetched.status_code == 200 and fetched.content == expected
        forged = anonymous.get(binary["url"][:-4] + "AAAA")
        assert forged.status_code in (403, 410)
    json_answer = cio_a.ok({"endpoint": "/json", "method": "GET", "connected_account_id": account})
    assert "binary_data" not in json_answer and isinstance(json_answer["data"], dict)
    head = cio_a.ok({"endpoint": "/image/png", "method": "HEAD", "connected_account_id": account})
    assert "binary_data" not in head and head["data"] is None


def test_binary_answers_are_scrubbed_too(cio_a: Composio, user_id: str) -> None:
    """The credential echoed inside a binary body is redacted in the stored file, even across
    the boundary of two streamed chunks."""
    upstream = LocalUpstream().start()
    try:
        account = cio_a.account(upstream.url(), user_id=user_id)
        for pad in (0, 65_530):
            result = cio_a.ok(
                {"endpoint": f"/echo-binary?pad={pad}", "method": "GET", "connected_account_id": account}
            )
            stored = httpx.get(result["binary_data"]["url"], timeout=30).content
            assert TOKEN.encode() not in stored
            assert stored == b"\x00\xff\xfe" + b"\x00" * pad + b"bin:Bearer [REDACTED]"
    finally:
        upstream.stop()


def test_credential_spellings_and_forwarding_headers_are_refused(cio_a: Composio, user_id: str) -> None:
    """The core's locked names and blocked headers hold for ``parameters`` and endpoint queries,
    relative or absolute, and nothing reaches the upstream."""
    upstream = LocalUpstream().start()
    try:
        query_account = cio_a.account(
            upstream.url(), user_id=user_id, scheme="API_KEY", val={"api_key": TOKEN, "api_key_query": "key"}
        )
        header_account = cio_a.account(
            upstream.url(), user_id=user_id, scheme="API_KEY", val={"api_key": TOKEN}
        )

        def query(name: str) -> list[dict[str, str]]:
            return [{"name": name, "value": "evil", "type": "query"}]

        def header(name: str, value: str = "evil") -> list[dict[str, str]]:
            return [{"name": name, "value": value, "type": "header"}]

        attempts: list[tuple[str, dict[str, Any], str]] = [
            (query_account, {"endpoint": "/x?key%20=evil"}, "LockedQuery"),
            (query_account, {"endpoint": "/x?a=1&key[]=evil"}, "LockedQuery"),
            (query_account, {"endpoint": f"{upstream.url()}/x?KEY+=evil"}, "LockedQuery"),
            (query_account, {"endpoint": "/x", "parameters": query("key ")}, "LockedQuery"),
            (query_account, {"endpoint": "/x", "parameters": query("key%00")}, "LockedQuery"),
            (header_account, {"endpoint": "/x", "parameters": header("X_API_Key")}, "LockedHeader"),
            (header_account, {"endpoint": "/x", "parameters": header("x.api.key")}, "LockedHeader"),
            (header_account, {"endpoint": "/x", "parameters": header("X-Forwarded-Host")}, "BlockedHeader"),
            (
                header_account,
                {"endpoint": "/x", "parameters": header("Forwarded", "host=evil")},
                "BlockedHeader",
            ),
            (
                header_account,
                {"endpoint": "/x", "parameters": header("X-HTTP-Method-Override", "PROPFIND")},
                "BlockedHeader",
            ),
        ]
        before = len(upstream.requests)
        for account, fields, slug in attempts:
            envelope(cio_a.proxy({"method": "GET", "connected_account_id": account, **fields}), 400, slug)
        assert len(upstream.requests) == before
        similar = {
            "endpoint": "/similar?key2=a",
            "parameters": query("xkey"),
            "connected_account_id": query_account,
        }
        assert cio_a.ok({"method": "GET", **similar})["status"] == 200
        assert upstream.requests[before:] == [f"/similar?key2=a&xkey=evil&key={TOKEN}"]
    finally:
        upstream.stop()
