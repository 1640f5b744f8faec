"""The request contract over the wire: paths, query, headers, bodies, methods (spec §2.1, §4).

Refusals are sent to a counting local upstream to prove nothing reached it; accepted calls go
to httpbin, whose echo shows exactly what the upstream received.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .support import TOKEN, Gateway, LocalUpstream


def _echo(data: dict[str, Any]) -> dict[str, Any]:
    assert data["bodyEncoding"] == "utf-8"
    parsed: dict[str, Any] = json.loads(data["body"])
    return parsed


@pytest.fixture(scope="module")
def counted(gw_a: Gateway, upstream: LocalUpstream) -> str:
    """A bearer connection to the counting upstream."""
    return gw_a.create(upstream.url(), auth={"type": "bearer", "token": TOKEN})


@pytest.fixture(scope="module")
def echo(gw_a: Gateway, httpbin_url: str) -> str:
    """A bearer connection to httpbin with inherited headers and query parameters."""
    return gw_a.create(
        httpbin_url,
        auth={"type": "bearer", "token": TOKEN},
        headers={"X-Inherited": "from-config", "X-Keep": "kept", "Accept": "application/json"},
        query={"inh": "1", "keep": "k"},
    )


# -- paths ----------------------------------------------------------------------------------

BAD_PATHS = [
    "",
    "relative/path",
    "//evil.example/x",
    "///evil.example",
    "http://evil.example/",
    "https:/evil.example",
    "HTTP://evil.example",
    "javascript:alert(1)",
    "/a\\b",
    "\\\\evil.example\\x",
    "/\\evil.example",
    "/a\x00b",
    "/a\r\nHost: evil.example",
    "/a\nb",
    "/a\tb",
    "/a\x7fb",
    "/../etc/passwd",
    "/a/../../b",
    "/a/..",
    "/./a",
    "/a/./b",
    "/..",
    "/%2e%2e/etc/passwd",
    "/%2E%2E/x",
    "/%2e%2e%2fetc%2fpasswd",
    "/a%2f%2e%2e%2fb",
    "/.%2e/x",
    "/%2e./x",
    "/%252e%252e%252fetc",
    "/%25252e%25252e%25252f",
    "/%2f%2fevil.example",
    "/%2F/evil.example",
    "/%5cevil.example",
    "/a%5c..%5cb",
    "/%00",
    "/a%0d%0aX-Injected:%201",
    "/%250a",
    "/a?b=1",
    "/a#frag",
    "/%zz",
    "/a%",
    "/a%2",
    "/" + "a" * 9000,
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_paths_that_could_leave_the_base_url_are_refused(
    gw_a: Gateway, upstream: LocalUpstream, counted: str, path: str
) -> None:
    before = len(upstream.requests)
    body = gw_a.refused(counted, 400, "invalid_proxy_request", method="GET", path=path)
    assert body["metadata"]["field"] == "request.path"
    assert len(upstream.requests) == before


@pytest.mark.parametrize("path", [None, 123, ["/a"], {"p": "/a"}])
def test_path_must_be_a_string(gw_a: Gateway, counted: str, path: Any) -> None:
    gw_a.refused(counted, 400, "invalid_proxy_request", method="GET", path=path)


def test_path_is_required(gw_a: Gateway, counted: str) -> None:
    gw_a.refused(counted, 400, "invalid_proxy_request", method="GET")


@pytest.mark.parametrize(
    ("path", "seen"),
    [
        ("/plain", "/plain"),
        ("/a%20b", "/a%20b"),
        ("/a b", "/a%20b"),
        ("/..hidden/x.y/...", "/..hidden/x.y/..."),
        ("/%E2%9C%93", "/%E2%9C%93"),
        ("/\u2713", "/%E2%9C%93"),
        ("/a:b@c;d,e", "/a:b@c;d,e"),
        ("/a%2Fb", "/a%2Fb"),
        ("/a%3Fb%23c", "/a%3Fb%23c"),
        ('/a"b<c>', "/a%22b%3Cc%3E"),
        ("/trailing/", "/trailing/"),
        ("/", "/"),
    ],
)
def test_accepted_paths_reach_the_upstream_as_encoded(
    gw_a: Gateway, upstream: LocalUpstream, counted: str, path: str, seen: str
) -> None:
    before = len(upstream.requests)
    assert gw_a.ok(counted, method="GET", path=path)["status"] == 200
    assert upstream.requests[before:] == [seen]


def test_path_with_a_prefix_stays_under_the_base(gw_a: Gateway, httpbin_url: str) -> None:
    connection = gw_a.create(httpbin_url + "/anything/base")
    url = _echo(gw_a.ok(connection, method="GET", path="/child"))["url"]
    assert url == httpbin_url + "/anything/base/child"
    gw_a.refused(connection, 400, "invalid_proxy_request", method="GET", path="/../../get")


# -- query ----------------------------------------------------------------------------------


def test_query_and_raw_query_are_exclusive(gw_a: Gateway, upstream: LocalUpstream, counted: str) -> None:
    before = len(upstream.requests)
    body = gw_a.refused(
        counted, 400, "invalid_proxy_request", method="GET", path="/q", query={"a": 1}, rawQuery="b=2"
    )
    assert body["metadata"]["field"] == "request.rawQuery"
    assert len(upstream.requests) == before


def test_structured_query_is_encoded_and_merged(gw_a: Gateway, echo: str) -> None:
    data = gw_a.ok(
        echo,
        method="GET",
        path="/get",
        query={"a": 1, "b": [True, "x y&z=1"], "c": None, "inh": "caller", "f": 1.5, "u": "\u2713"},
    )
    args = _echo(data)["args"]
    assert args == {
        "a": "1",
        "b": ["true", "x y&z=1"],
        "inh": "caller",
        "keep": "k",
        "f": "1.5",
        "u": "\u2713",
    }


def test_raw_query_is_appended_unchanged(gw_a: Gateway, echo: str) -> None:
    data = gw_a.ok(echo, method="GET", path="/anything", rawQuery="x=1&y=%20z&x=2&flag")
    body = _echo(data)
    assert body["args"] == {"inh": "1", "keep": "k", "x": ["1", "2"], "y": " z", "flag": ""}
    assert body["url"].endswith("?inh=1&keep=k&x=1&y=%20z&x=2&flag")


@pytest.mark.parametrize("raw", ["?a=1", "a=1#frag", "a=1 b", "a=%zz", "a=\n", "a=\x00", "a=%"])
def test_malformed_raw_query_is_refused(gw_a: Gateway, counted: str, raw: str) -> None:
    body = gw_a.refused(counted, 400, "invalid_proxy_request", method="GET", path="/q", rawQuery=raw)
    assert body["metadata"]["field"] == "request.rawQuery"


@pytest.mark.parametrize("query", [{"a": {"nested": 1}}, {"a": [[1]]}, {"a": [{"b": 1}]}, ["a", 1], "a=1"])
def test_query_values_must_be_scalars(gw_a: Gateway, counted: str, query: Any) -> None:
    gw_a.refused(counted, 400, "invalid_proxy_request", method="GET", path="/q", query=query)


# -- headers --------------------------------------------------------------------------------


def test_caller_overrides_inherited_headers(gw_a: Gateway, echo: str) -> None:
    data = gw_a.ok(
        echo, method="GET", path="/headers", headers={"x-inherited": "from-caller", "X-Extra": "e"}
    )
    headers = _echo(data)["headers"]
    assert headers["X-Inherited"] == "from-caller"
    assert headers["X-Keep"] == "kept"
    assert headers["X-Extra"] == "e"
    assert headers["Accept"] == "application/json"
    assert headers["Authorization"] == "Bearer [REDACTED]"  # injected, then scrubbed in the echo


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION", "AuThOrIzAtIoN"])
@pytest.mark.parametrize("auth", ["bearer", "basic"])
def test_authorization_is_locked_for_bearer_and_basic(
    gw_a: Gateway, upstream: LocalUpstream, auth: str, name: str
) -> None:
    config = (
        {"type": "bearer", "token": TOKEN}
        if auth == "bearer"
        else {"type": "basic", "username": "user", "password": TOKEN}
    )
    connection = gw_a.create(upstream.url(), auth=config)
    before = len(upstream.requests)
    body = gw_a.refused(
        connection, 400, "locked_header", method="GET", path="/x", headers={name: "Bearer caller-token"}
    )
    assert body["metadata"]["header"] == name
    assert name in body["message"]
    assert len(upstream.requests) == before


def test_custom_credential_header_is_locked(gw_a: Gateway, httpbin_url: str) -> None:
    connection = gw_a.create(httpbin_url, auth={"type": "header", "name": "X-Api-Key", "value": TOKEN})
    for name in ("X-Api-Key", "x-api-key", "X-API-KEY"):
        body = gw_a.refused(
            connection, 400, "locked_header", method="GET", path="/headers", headers={name: "x"}
        )
        assert body["metadata"]["header"] == name
    # Authorization is not the credential here, so the caller may send it.
    headers = _echo(
        gw_a.ok(connection, method="GET", path="/headers", headers={"Authorization": "Caller x"})
    )["headers"]
    assert headers["Authorization"] == "Caller x"
    assert headers["X-Api-Key"] == "[REDACTED]"


@pytest.mark.parametrize(
    "request_fields",
    [
        {"query": {"api_key": "mine"}},
        {"query": {"API_KEY": "mine"}},
        {"query": {"api_key": ["a", "b"]}},
        {"rawQuery": "api_key=mine"},
        {"rawQuery": "a=1&API_Key=mine"},
        {"rawQuery": "api%5Fkey=mine"},
        {"rawQuery": "a=1&api_key"},
        {"rawQuery": "api+key=1&api_key="},
    ],
)
def test_credential_query_parameter_is_locked(
    gw_a: Gateway, upstream: LocalUpstream, request_fields: dict[str, Any]
) -> None:
    connection = gw_a.create(upstream.url(), auth={"type": "query", "name": "api_key", "value": TOKEN})
    before = len(upstream.requests)
    body = gw_a.refused(connection, 400, "locked_query", method="GET", path="/x", **request_fields)
    assert body["metadata"]["parameter"].lower() == "api_key"
    assert len(upstream.requests) == before


BLOCKED = [
    "Cookie",
    "cookie",
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Upgrade",
    "Expect",
    "Proxy-Authorization",
    "Proxy-Connection",
    "proxy-anything",
]


@pytest.mark.parametrize("name", BLOCKED)
def test_blocked_request_headers_are_refused(
    gw_a: Gateway, upstream: LocalUpstream, counted: str, name: str
) -> None:
    before = len(upstream.requests)
    body = gw_a.refused(counted, 400, "blocked_header", method="GET", path="/x", headers={name: "1"})
    assert body["metadata"]["header"] == name
    assert len(upstream.requests) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "a\r\nX-Injected: 1"},
        {"X-A": "a\nb"},
        {"X-A": "a\rb"},
        {"X-A": "a\x00b"},
        {"X-A": "a\x7f"},
        {"X-A\r\nX-Injected": "1"},
        {"X-A\n": "1"},
        {"X-A\x00": "1"},
        {"X A": "1"},
        {"X:A": "1"},
        {"": "1"},
        {"X-A": 1},
        {"X-A": None},
        {"X-A": "v" * 9000},
        {f"X-H{i}": "1" for i in range(101)},
    ],
    ids=lambda h: repr(h)[:40],
)
def test_malformed_headers_are_refused(
    gw_a: Gateway, upstream: LocalUpstream, counted: str, headers: dict[str, Any]
) -> None:
    before = len(upstream.requests)
    gw_a.refused(counted, 400, "invalid_proxy_request", method="GET", path="/x", headers=headers)
    assert len(upstream.requests) == before


def test_headers_must_be_an_object(gw_a: Gateway, counted: str) -> None:
    gw_a.refused(counted, 400, "invalid_proxy_request", method="GET", path="/x", headers=["X-A: 1"])


def test_tab_inside_a_header_value_is_allowed(gw_a: Gateway, echo: str) -> None:
    headers = _echo(gw_a.ok(echo, method="GET", path="/headers", headers={"X-Tab": "a\tb"}))["headers"]
    assert headers["X-Tab"] == "a\tb"


# -- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "data", "json_value"),
    [
        ({"a": [1, {"b": None}]}, "application/json", '{"a":[1,{"b":null}]}', {"a": [1, {"b": None}]}),
        ([1, "x"], "application/json", '[1,"x"]', [1, "x"]),
        ("plain \u2713 text", "text/plain; charset=utf-8", "plain \u2713 text", None),
        ('{"looks": "like json"}', "text/plain; charset=utf-8", '{"looks": "like json"}', None),
        ("", "text/plain; charset=utf-8", "", None),
    ],
)
def test_body_forms(
    gw_a: Gateway, echo: str, body: Any, content_type: str, data: str, json_value: Any
) -> None:
    seen = _echo(gw_a.ok(echo, method="PUT", path="/anything", body=body))
    assert seen["method"] == "PUT"
    assert seen["data"] == data
    assert seen["headers"]["Content-Type"] == content_type
    if json_value is not None:
        assert seen["json"] == json_value


def test_caller_content_type_wins(gw_a: Gateway, echo: str) -> None:
    seen = _echo(
        gw_a.ok(
            echo, method="POST", path="/anything", body="<a/>", headers={"content-type": "application/xml"}
        )
    )
    assert seen["headers"]["Content-Type"] == "application/xml"
    assert seen["data"] == "<a/>"


@pytest.mark.parametrize("body", [1, 1.5, True, False])
def test_scalar_bodies_are_refused(gw_a: Gateway, counted: str, body: Any) -> None:
    response = gw_a.refused(counted, 400, "invalid_proxy_request", method="POST", path="/x", body=body)
    assert response["metadata"]["field"] == "request.body"


def test_request_body_cap(gw_a: Gateway, upstream: LocalUpstream) -> None:
    connection = gw_a.create(upstream.url(), proxy={"max_request_body_bytes": 1024})
    assert gw_a.info(connection)["requestContract"]["maxRequestBodyBytes"] == 1024
    assert gw_a.ok(connection, method="POST", path="/cap/ok", body="a" * 1024)["status"] == 200
    before = upstream.hits("/cap/")
    body = gw_a.refused(
        connection, 413, "request_body_too_large", method="POST", path="/cap/x", body="a" * 1025
    )
    assert body["metadata"]["field"] == "request.body"
    gw_a.refused(
        connection, 413, "request_body_too_large", method="POST", path="/cap/x", body={"a": "b" * 1020}
    )
    gw_a.refused(
        connection, 413, "request_body_too_large", method="POST", path="/cap/x", body=["\u2713" * 400]
    )
    assert upstream.hits("/cap/") == before
    # A request far beyond the cap is refused while it is read, not after buffering it.
    huge = gw_a.client.post(
        f"/api/connections/{connection}/proxy",
        content=b'{"request":{"method":"POST","path":"/cap/x","body":"' + b"a" * 4_000_000 + b'"}}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert upstream.hits("/cap/") == before


# -- methods and envelope -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "get", "Patch"])
def test_allowed_methods(gw_a: Gateway, echo: str, method: str) -> None:
    assert _echo(gw_a.ok(echo, method=method, path="/anything"))["method"] == method.upper()


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "G ET", "", None, 1])
def test_other_methods_are_refused(gw_a: Gateway, upstream: LocalUpstream, counted: str, method: Any) -> None:
    before = len(upstream.requests)
    body = gw_a.refused(counted, 400, "invalid_proxy_request", method=method, path="/x")
    assert body["metadata"]["field"] == "request.method"
    assert len(upstream.requests) == before


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({}, "invalid_proxy_request"),
        ({"request": "GET /"}, "invalid_proxy_request"),
        ([{"request": {}}], "invalid_proxy_request"),
        ({"request": {"method": "GET", "path": "/"}, "extra": 1}, "invalid_proxy_request"),
        ({"request": {"method": "GET", "path": "/", "url": "http://evil.example"}}, "invalid_proxy_request"),
        ({"request": {"method": "GET", "path": "/", "api": "rest"}}, "invalid_proxy_request"),
        ({"request": {"method": "GET", "path": "/"}, "async": "yes"}, "invalid_proxy_request"),
        ({"request": {"method": "POST", "path": "/"}, "async": True}, "async_requires_get"),
        ({"request": {"method": "GET", "path": "/", "rawQuery": 5}}, "invalid_proxy_request"),
    ],
)
def test_malformed_envelopes(gw_a: Gateway, counted: str, payload: Any, key: str) -> None:
    response = gw_a.client.post(f"/api/connections/{counted}/proxy", json=payload)
    assert response.status_code == 400, response.text
    assert response.json()["key"] == key


def test_non_json_body(gw_a: Gateway, counted: str) -> None:
    response = gw_a.client.post(f"/api/connections/{counted}/proxy", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["key"] == "malformed_json"


def test_null_request_fields_mean_absent(gw_a: Gateway, echo: str) -> None:
    data = gw_a.ok(
        echo, method="GET", path="/get", headers=None, query=None, rawQuery=None, body=None, api=None
    )
    assert _echo(data)["args"] == {"inh": "1", "keep": "k"}


def test_unauthenticated_calls_are_refused(server: Any, counted: str) -> None:
    import httpx

    for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        response = httpx.post(
            f"{server.url}/api/connections/{counted}/proxy",
            json={"request": {"method": "GET", "path": "/"}},
            headers=headers,
        )
        assert response.status_code == 401
        assert response.json()["status"] == 401


def test_basic_org_key_can_proxy(server: Any, org_a: Any, httpbin_url: str, gw_a: Gateway) -> None:
    import httpx

    connection = gw_a.create(httpbin_url)
    response = httpx.post(
        f"{server.url}/api/connections/{connection}/proxy",
        json={"request": {"method": "GET", "path": "/get"}},
        headers=org_a.basic,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == 200
