"""The request contract over the wire: paths, query, headers, bodies, methods (spec §2.1, §4).

Refusals are sent to a counting local upstream to prove nothing reached it; accepted calls go
to httpbin, whose echo shows exactly what the upstream received.
"""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import unquote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyhole import http_names
from keyhole.connections.target import HttpTarget, build_http_target
from keyhole.connections.type_files import load_catalog
from keyhole.errors import InvalidRequest
from keyhole.proxy import contract
from keyhole.proxy.request import ProxyCall, build_upstream

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
    assert http_names.query_name_key(body["metadata"]["parameter"]) == "api_key"
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


# -- locked names: spellings an upstream reads as the credential's -----------------------------
# An outside review sent a second value for an injected query credential under near-duplicate
# names, and the upstream received both. The generated cases below run the pure contract
# (``build_upstream``); a handful go end to end.

CATALOG = load_catalog()
QUERY_NAME = "api_key"
HEADER_NAME = "X-Api-Key"


def _target(auth: dict[str, str], **configuration: Any) -> HttpTarget:
    return build_http_target(
        connection_id="c",
        organization_id="o",
        proxy_enabled=True,
        connection_type=CATALOG.get("api"),
        configuration={"url": "https://api.example.com/v1", "auth": auth, **configuration},
    )


QUERY_TARGET = _target({"type": "query", "name": QUERY_NAME, "value": TOKEN})
HEADER_TARGET = _target({"type": "header", "name": HEADER_NAME, "value": TOKEN})


def _refusal(target: HttpTarget, **fields: Any) -> str | None:
    """The error key ``build_upstream`` refuses the call with, or None when it is accepted."""
    try:
        build_upstream(target, ProxyCall(**{"method": "GET", "path": "/x", "headers": {}, **fields}))
    except InvalidRequest as error:
        return error.key
    return None


@st.composite
def _spelled(draw: st.DrawFn, name: str, separators: tuple[str, ...]) -> str:
    """``name`` with each character case-flipped, percent-encoded (up to three times) and each
    separator swapped, as it can appear in a query string or a header name."""
    spelled = []
    for char in name:
        if char in "_-":
            char = draw(st.sampled_from(separators))
        elif draw(st.booleans()):
            char = char.swapcase()
        depth = draw(st.integers(0, 3)) if char.isalnum() else 0
        if depth:
            char = f"%{ord(char):02{draw(st.sampled_from('xX'))}}".replace("%", "%" + "25" * (depth - 1))
        spelled.append(char)
    return "".join(spelled)


# Written as they appear on the wire (valid in rawQuery and in a header token).
EDGES = ("", "%20", "+", "%00", "%09", "%0A", "%E2%80%8B", "%C2%A0", "%EF%BB%BF", "%2520", "%2B", "%252B")
BRACKETS = ("", "[]", "[0]", "[key]", "[a][b]", "%5B%5D", "%5b0%5d", "%255B%255D")
NUL_TAILS = ("", "%00junk", "%2500[x]")
HEADER_NUL_TAILS = ("", "%00junk", "%2500x")  # a header name is a token: no brackets


@st.composite
def query_spellings(draw: st.DrawFn) -> str:
    core = draw(_spelled(QUERY_NAME, ("_", ".", "+", "%20", "%5F", "%2E", "%255F")))
    prefix, suffix = draw(st.sampled_from(EDGES)), draw(st.sampled_from(EDGES))
    return prefix + core + suffix + draw(st.sampled_from(BRACKETS)) + draw(st.sampled_from(NUL_TAILS))


@st.composite
def header_spellings(draw: st.DrawFn) -> str:
    core = draw(_spelled(HEADER_NAME, ("-", "_", ".", "%2D", "%5F", "%252D")))
    edges = ("", "%20", "+", "%00", "%09", "%2520", "%2B")
    return (
        draw(st.sampled_from(edges))
        + core
        + draw(st.sampled_from(edges))
        + draw(st.sampled_from(HEADER_NUL_TAILS))
    )


GENERATED = settings(max_examples=400, deadline=None, database=None)


@GENERATED
@given(
    name=query_spellings(),
    mode=st.sampled_from(["query", "decoded query", "rawQuery"]),
    sep=st.sampled_from("&;"),
)
def test_generated_spellings_of_a_query_credential_are_refused(name: str, mode: str, sep: str) -> None:
    if mode == "rawQuery":
        fields: dict[str, Any] = {"raw_query": f"a=1{sep}{name}=evil"}
    else:
        fields = {"query": [("a", "1"), (unquote_plus(name) if mode == "decoded query" else name, "evil")]}
    assert _refusal(QUERY_TARGET, **fields) == "locked_query"


@GENERATED
@given(name=header_spellings())
def test_generated_spellings_of_a_header_credential_are_refused(name: str) -> None:
    assert _refusal(HEADER_TARGET, headers={"Accept": "*/*", name: "evil"}) == "locked_header"


@GENERATED
@given(
    extra=st.text(string.ascii_letters + string.digits, min_size=1, max_size=4),
    before=st.booleans(),
    raw=st.booleans(),
)
def test_names_that_only_look_like_a_query_credential_are_accepted(
    extra: str, before: bool, raw: bool
) -> None:
    name = extra + QUERY_NAME if before else QUERY_NAME + extra
    call = ProxyCall("GET", "/x", {}, **({"raw_query": f"{name}=v"} if raw else {"query": [(name, "v")]}))
    assert build_upstream(QUERY_TARGET, call).encoded_query == f"{name}=v&{QUERY_NAME}={TOKEN}"


@GENERATED
@given(extra=st.text(string.ascii_letters + string.digits, min_size=1, max_size=4), before=st.booleans())
def test_names_that_only_look_like_a_header_credential_are_accepted(extra: str, before: bool) -> None:
    name = extra + HEADER_NAME if before else HEADER_NAME + extra
    headers = build_upstream(HEADER_TARGET, ProxyCall("GET", "/x", {name: "v"})).headers
    assert headers == {name: "v", HEADER_NAME: TOKEN}


@GENERATED
@given(name=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True))
def test_everyday_names_take_the_fast_path_to_the_same_key(name: str) -> None:
    # A trailing NUL sends a name down the full normalisation, which strips it again.
    assert http_names.query_name_key(name) == http_names.query_name_key(name + "\x00")
    assert http_names.header_name_key(name) == http_names.header_name_key(name + "\x00")


@pytest.mark.parametrize(
    "name",
    ["api_key2", "xapi_key", "api_keys", "apikey", "api-key", "api_ke", "api_key_", "_api_key", "api[]key"],
)
def test_similar_query_names_are_accepted(name: str) -> None:
    assert _refusal(QUERY_TARGET, query=[(name, "v")]) is None
    assert _refusal(QUERY_TARGET, raw_query=f"{name}=v") is None


def test_deeply_nested_percent_encoding_is_decoded_completely() -> None:
    for depth in (1, 2, 10, 200):
        nested = "api_key%" + "25" * (depth - 1) + "20"
        assert http_names.query_name_key(nested) == QUERY_NAME
        assert _refusal(QUERY_TARGET, raw_query=f"{nested}=evil") == "locked_query"


def test_blocked_names_are_their_own_keys() -> None:
    for name in contract.BLOCKED_REQUEST_HEADERS:
        assert http_names.header_name_key(name) == name.lower()


def test_inherited_names_that_read_as_the_credential_are_not_sent() -> None:
    target = _target(
        {"type": "header", "name": HEADER_NAME, "value": TOKEN},
        headers={"X_Api_Key": "shadow", "x.api.key": "shadow", "X-Team": "t"},
    )
    assert dict(target.inherited_headers) == {"X-Team": "t"}
    target = _target(
        {"type": "query", "name": QUERY_NAME, "value": TOKEN},
        query={"API_KEY": "shadow", "api_key[]": "shadow", "api.key": "shadow", "v": "1"},
    )
    assert target.inherited_query == (("v", "1"),)
    assert build_upstream(target, ProxyCall("GET", "/x", {})).encoded_query == f"v=1&{QUERY_NAME}={TOKEN}"


@pytest.fixture(scope="module")
def query_locked(gw_a: Gateway, upstream: LocalUpstream) -> str:
    return gw_a.create(upstream.url(), auth={"type": "query", "name": QUERY_NAME, "value": TOKEN})


@pytest.fixture(scope="module")
def header_locked(gw_a: Gateway, upstream: LocalUpstream) -> str:
    return gw_a.create(upstream.url(), auth={"type": "header", "name": HEADER_NAME, "value": TOKEN})


# The review's five spellings, each as it was sent, and as a structured query name.
REVIEW_SPELLINGS = [
    {"rawQuery": "api_key%20=evil"},
    {"rawQuery": "api_key+=evil"},
    {"rawQuery": "api_key%00=evil"},
    {"rawQuery": "api_key[]=evil"},
    {"query": {"api_key ": "evil"}},
    {"query": {"api_key%20": "evil"}},
    {"query": {"api_key+": "evil"}},
    {"query": {"api_key\x00": "evil"}},
    {"query": {"api_key[]": "evil"}},
    {"rawQuery": "a=1;api_key=evil"},
    {"rawQuery": "API.KEY%5B0%5D=evil"},
]


@pytest.mark.parametrize("request_fields", REVIEW_SPELLINGS, ids=repr)
def test_review_spellings_of_a_query_credential_are_refused_end_to_end(
    gw_a: Gateway, upstream: LocalUpstream, query_locked: str, request_fields: dict[str, Any]
) -> None:
    before = len(upstream.requests)
    body = gw_a.refused(query_locked, 400, "locked_query", method="GET", path="/x", **request_fields)
    assert http_names.query_name_key(body["metadata"]["parameter"]) == QUERY_NAME
    assert QUERY_NAME in body["message"]
    assert len(upstream.requests) == before


@pytest.mark.parametrize(
    "name", ["X_Api_Key", "x.api.key", "X-Api-Key%20", "X-Api-Key+", "X-Api-Key%00", "X-API_KEY"]
)
def test_header_credential_spellings_are_refused_end_to_end(
    gw_a: Gateway, upstream: LocalUpstream, header_locked: str, name: str
) -> None:
    before = len(upstream.requests)
    body = gw_a.refused(header_locked, 400, "locked_header", method="GET", path="/x", headers={name: "evil"})
    assert body["metadata"]["header"] == name
    assert HEADER_NAME in body["message"]
    assert len(upstream.requests) == before


@settings(max_examples=8, deadline=None, database=None)
@given(query=query_spellings(), header=header_spellings())
def test_generated_spellings_are_refused_end_to_end(
    gw_a: Gateway, upstream: LocalUpstream, query_locked: str, header_locked: str, query: str, header: str
) -> None:
    before = len(upstream.requests)
    gw_a.refused(query_locked, 400, "locked_query", method="GET", path="/x", rawQuery=f"{query}=evil")
    gw_a.refused(query_locked, 400, "locked_query", method="GET", path="/x", query={query: "evil"})
    gw_a.refused(header_locked, 400, "locked_header", method="GET", path="/x", headers={header: "evil"})
    assert len(upstream.requests) == before


def test_similar_names_reach_the_upstream_end_to_end(
    gw_a: Gateway, upstream: LocalUpstream, query_locked: str
) -> None:
    before = len(upstream.requests)
    gw_a.ok(query_locked, method="GET", path="/similar", query={"api_key2": "a", "xapi_key": "b"})
    gw_a.ok(query_locked, method="GET", path="/similar", rawQuery="api_key2=a&xapi_key=b")
    expected = f"/similar?api_key2=a&xapi_key=b&{QUERY_NAME}={TOKEN}"
    assert upstream.requests[before:] == [expected, expected]


def test_inherited_near_duplicates_of_the_credential_are_not_sent_end_to_end(
    gw_a: Gateway, upstream: LocalUpstream
) -> None:
    connection = gw_a.create(
        upstream.url(),
        auth={"type": "query", "name": QUERY_NAME, "value": TOKEN},
        query={"API_KEY": "shadow", "api_key[]": "shadow", "v": "1"},
    )
    before = len(upstream.requests)
    gw_a.ok(connection, method="GET", path="/inherited")
    assert upstream.requests[before:] == [f"/inherited?v=1&{QUERY_NAME}={TOKEN}"]


# Headers that tell an upstream where the request came from, which host or URL it was for, or
# which method to act on. Refused (never dropped), like the other blocked headers.
FORWARDING = [
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "x-forwarded-anything",
    "X_Forwarded_Host",
    "X-Forwarded",
    "X-Real-IP",
    "X-Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "X-Original-URL",
    "X-Rewrite-URL",
    "X-Host",
    "X-Original-Host",
    "x_real_ip",
    "Proxy",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
    "x_http_method_override",
]


@pytest.mark.parametrize("name", FORWARDING)
def test_forwarding_and_method_override_headers_are_refused(
    gw_a: Gateway, upstream: LocalUpstream, counted: str, name: str
) -> None:
    before = len(upstream.requests)
    body = gw_a.refused(
        counted, 400, "blocked_header", method="GET", path="/x", headers={name: "evil.example"}
    )
    assert body["metadata"]["header"] == name
    assert len(upstream.requests) == before


def test_forwarding_and_method_override_headers_are_listed_in_proxy_info(gw_a: Gateway, counted: str) -> None:
    listed = gw_a.info(counted)["requestContract"]["blockedRequestHeaders"]
    for name in (
        "Forwarded",
        "X-Forwarded-*",
        "X-Real-IP",
        "X-Client-IP",
        "True-Client-IP",
        "CF-Connecting-IP",
    ):
        assert name in listed
    for name in ("X-Original-URL", "X-Rewrite-URL", "X-Host", "X-Original-Host", "Proxy", "Proxy-*"):
        assert name in listed
    for name in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"):
        assert name in listed


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


def test_head_is_in_the_contract(gw_a: Gateway, upstream: LocalUpstream, counted: str) -> None:
    assert "HEAD" in gw_a.info(counted)["requestContract"]["allowedMethods"]
    before = len(upstream.requests)
    data = gw_a.ok(counted, method="head", path="/x")
    assert data["body"] == ""
    assert len(upstream.requests) == before + 1
    # Sent as HEAD (upper-cased by the contract), as the call's audit record shows.
    assert gw_a.calls(counted, limit=1)["data"][0]["method"] == "HEAD"


@pytest.mark.parametrize(
    "method", ["OPTIONS", "TRACE", "CONNECT", "PROPFIND", "G ET", "", None, 1, "X" * 40, "GET\u00e9"]
)
def test_other_methods_are_refused(gw_a: Gateway, upstream: LocalUpstream, counted: str, method: Any) -> None:
    before = len(upstream.requests)
    body = gw_a.refused(counted, 400, "invalid_proxy_request", method=method, path="/x")
    assert body["metadata"]["field"] == "request.method"
    assert len(upstream.requests) == before
    # The refusal is audited, whatever the caller sent as a method (the column holds eight characters).
    record = gw_a.calls(counted, limit=1)["data"][0]
    assert record["proxyCallId"] == body["metadata"]["proxyCallId"]
    assert record["outcome"] == "invalid_proxy_request"
    assert record["method"] in {"OPTIONS", "TRACE", "CONNECT", "PROPFIND", "G ET", "", "XXXXXXXX"}


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
