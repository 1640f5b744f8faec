"""Pure unit tests of the proxy's request and response rules (no server, no network)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from keyhole.audit.records import redacted_path
from keyhole.connections.target import HttpTarget, build_http_target
from keyhole.connections.type_files import load_catalog
from keyhole.errors import CORE_FIELD_NAMES, CallField, InvalidRequest, PayloadTooLarge
from keyhole.http_paths import check_path
from keyhole.proxy import contract
from keyhole.proxy.request import (
    ProxyCall,
    build_upstream,
    check_method,
    encode_body,
    flatten_query,
)
from keyhole.proxy.response import decode_body, is_text, opaque_coding, shape_head
from keyhole.vault.scrub import NO_SECRETS, Scrubber

CATALOG = load_catalog()
SECRET = "s3cret-Token_42"


def target(auth: dict[str, Any] | None = None, **configuration: Any) -> HttpTarget:
    return build_http_target(
        connection_id="c",
        organization_id="o",
        proxy_enabled=True,
        connection_type=CATALOG.get("api"),
        configuration={
            "url": "https://api.example.com/v1",
            "auth": auth or {"type": "none"},
            **configuration,
        },
    )


def call(**fields: Any) -> ProxyCall:
    return ProxyCall(**{"method": "GET", "path": "/x", "headers": {}, **fields})


# -- request --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "wire"),
    [
        ("/a b", "/a%20b"),
        ("/a%2Fb", "/a%2Fb"),
        ("/\u2713", "/%E2%9C%93"),
        ("/a:b@c", "/a:b@c"),
        ("/...", "/..."),
        ("/a/", "/a/"),
    ],
)
def test_check_path_encodes(path: str, wire: str) -> None:
    assert check_path(path) == wire


@pytest.mark.parametrize(
    "path",
    [
        "//x",
        "x",
        "/..",
        "/%2e%2e",
        "/%252e%252e/",
        "/%25252e%25252e",
        "/a\\b",
        "/%5c",
        "/a\n",
        "/?",
        "/%",
    ],
)
def test_check_path_refuses(path: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_path(path)
    error = caught.value
    assert error.metadata["field"] == "path"
    assert error.message.startswith("path ")
    # Each dialect names the field its own way, in the message and in metadata alike.
    error.name_fields({**CORE_FIELD_NAMES, CallField.PATH: "endpoint"})
    assert error.metadata["field"] == "endpoint"
    assert error.message.startswith("endpoint ")


def test_non_ascii_controls_travel_percent_encoded() -> None:
    assert check_path("/\u0085") == "/%C2%85"  # NEL is not an ASCII control character


def test_check_method() -> None:
    assert check_method("patch") == "PATCH"
    assert check_method("head") == "HEAD"
    for method in ("options", "TRACE", "CONNECT", "", None, 3):
        with pytest.raises(InvalidRequest):
            check_method(method)


def test_flatten_query() -> None:
    assert flatten_query({"a": 1, "b": [True, False, "x"], "c": None, "d": [None, 2.5]}) == [
        ("a", "1"),
        ("b", "true"),
        ("b", "false"),
        ("b", "x"),
        ("d", "2.5"),
    ]
    for bad in ({"a": {"b": 1}}, {"a": [[1]]}, [("a", 1)], "a=1"):
        with pytest.raises(InvalidRequest):
            flatten_query(bad)


def test_encode_body() -> None:
    assert encode_body(None) == (None, None)
    assert encode_body("") == (b"", "text/plain; charset=utf-8")
    assert encode_body("\u2713") == ("\u2713".encode(), "text/plain; charset=utf-8")
    assert encode_body({"a": [1]}) == (b'{"a":[1]}', "application/json")
    assert encode_body([]) == (b"[]", "application/json")
    for bad in (1, 1.5, True):
        with pytest.raises(InvalidRequest):
            encode_body(bad)


def test_build_upstream_merges_and_locks() -> None:
    t = target(
        {"type": "bearer", "token": SECRET},
        headers={"X-A": "inherited", "Authorization": "ignored"},
        query={"v": "1", "w": "2"},
    )
    upstream = build_upstream(
        t,
        call(
            headers={"x-a": "caller", "X-B": "b"},
            query=[("v", "9")],
            body=b"{}",
            content_type="application/json",
        ),
    )
    assert upstream.headers == {
        "x-a": "caller",
        "X-B": "b",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {SECRET}",
    }
    assert upstream.encoded_query == "w=2&v=9"
    assert str(t.url_for(upstream.url_path, upstream.encoded_query)) == "https://api.example.com/v1/x?w=2&v=9"
    with pytest.raises(InvalidRequest) as caught:
        build_upstream(t, call(headers={"AUTHORIZATION": "x"}))
    assert caught.value.key == "locked_header"


def test_build_upstream_query_credential_goes_last_and_is_locked() -> None:
    t = target({"type": "query", "name": "key", "value": SECRET}, query={"key": "shadow", "v": "1"})
    assert t.inherited_query == (("v", "1"),)
    upstream = build_upstream(t, call(raw_query="a=%20b&c"))
    assert upstream.encoded_query == f"v=1&a=%20b&c&key={SECRET}"
    for fields in ({"query": [("KEY", "x")]}, {"raw_query": "Key=x"}, {"raw_query": "k%65y=x"}):
        with pytest.raises(InvalidRequest) as caught:
            build_upstream(t, call(**fields))
        assert caught.value.key == "locked_query"
    with pytest.raises(InvalidRequest):
        build_upstream(t, call(query=[("a", "1")], raw_query="b=2"))


@pytest.mark.parametrize("name", ["X-A\n", "X-A\r", "X A", "", "X-A\x00", "\u00e9"])
def test_header_names_must_be_tokens(name: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_upstream(target(), call(headers={name: "1"}))
    assert caught.value.key == "invalid_proxy_request"


def test_blocked_headers() -> None:
    for name in (*contract.BLOCKED_REQUEST_HEADERS, "proxy-x", "COOKIE"):
        with pytest.raises(InvalidRequest) as caught:
            build_upstream(target(), call(headers={name: "1"}))
        assert caught.value.key == "blocked_header"


def test_request_body_cap() -> None:
    t = target(proxy={"max_request_body_bytes": 10})
    assert build_upstream(t, call(body=b"x" * 10)).body == b"x" * 10
    with pytest.raises(PayloadTooLarge):
        build_upstream(t, call(body=b"x" * 11))


# -- target ---------------------------------------------------------------------------------


def test_echo_forms_of_secrets() -> None:
    secret = 'a b/c+"d'
    for auth in ({"type": "query", "name": "k", "value": secret}, {"type": "bearer", "token": secret}):
        forms = target(auth).scrubber.forms
        assert secret in forms
        assert "a+b%2Fc%2B%22d" in forms  # as sent (urlencode)
        assert "a%20b%2Fc%2B%22d" in forms
        assert "a+b/c%2B%22d" in forms
        assert 'a b/c+\\"d' in forms  # JSON-escaped
        assert base64.b64encode(secret.encode()).decode() in forms
        assert list(forms) == sorted(forms, key=len, reverse=True)
    basic = target({"type": "basic", "username": "u", "password": "pw"}).scrubber.forms
    pair = base64.b64encode(b"u:pw").decode()
    assert {"pw", pair, pair.rstrip("="), base64.b64encode(b"pw").decode()} <= set(basic)
    assert "u" not in basic  # the user name is not a secret
    assert set(target({"type": "basic", "username": "u", "password": ""}).scrubber.forms) == {
        base64.b64encode(b"u:").decode(),
        base64.b64encode(b"u:").decode().rstrip("="),
    }
    assert not target().scrubber
    oauth = {"type": "oauth2", "grant": "client_credentials", "token_url": "https://id.example/t"}
    client = target({**oauth, "client_id": "app", "client_secret": "cs-Never-Sent-1"})
    assert "cs-Never-Sent-1" in client.scrubber.forms  # every secret field, injected or not


def test_unparsable_base_url() -> None:
    with pytest.raises(InvalidRequest) as caught:
        target(url="http://127.0.0.1:1\\@evil.example")
    assert caught.value.key == "invalid_base_url"


# -- response -------------------------------------------------------------------------------


def _headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_shape_head() -> None:
    headers = _headers(
        ("Set-Cookie", "a=b"),
        ("X-Dup", "1"),
        ("x-dup", "2"),
        ("Connection", "close, X-Hop"),
        ("X-Hop", "h"),
        ("X-Echo", f"k={SECRET}"),
        (f"X-{SECRET}", "v"),
        ("Content-Length", "5"),
        ("X-Powered-By", "php"),
    )
    scrubber = Scrubber.of([SECRET])
    assert shape_head(headers, scrubber)[0] == {"X-Dup": "1, 2", "X-Echo": "k=[REDACTED]"}
    assert shape_head(headers, NO_SECRETS)[0] == {
        "X-Dup": "1, 2",
        "X-Echo": f"k={SECRET}",
        f"X-{SECRET}": "v",
    }
    typed = _headers(("Content-Type", f"text/plain; k={SECRET.upper()}"), ("Connection", "content-type"))
    assert shape_head(typed, scrubber) == ({}, "text/plain; k=[REDACTED]")
    assert shape_head(typed, NO_SECRETS)[1] == f"text/plain; k={SECRET.upper()}"


def test_decode_body() -> None:
    assert decode_body(b"", "application/octet-stream", truncated=False) == ("", "utf-8")
    assert decode_body(b"{}", "application/json", truncated=False) == ("{}", "utf-8")
    assert decode_body(b"hi", "", truncated=False) == ("hi", "utf-8")
    assert decode_body(b"\xff", "text/plain", truncated=False) == ("/w==", "base64")
    assert decode_body(b"hi", "image/png", truncated=False) == ("aGk=", "base64")
    assert decode_body("a\u00e9".encode()[:-1], "text/plain", truncated=True) == ("a", "utf-8")
    assert decode_body("a\u2713".encode()[:-1], "text/plain", truncated=True) == ("a", "utf-8")
    assert decode_body("a\u2713".encode()[:-1], "text/plain", truncated=False)[1] == "base64"
    for content_type in ("application/problem+json", "text/csv", "application/x-www-form-urlencoded; a=b"):
        assert is_text(content_type)


def test_opaque_coding() -> None:
    for decoded in (
        (),
        (("Content-Encoding", "gzip"),),
        (("Content-Encoding", "GZIP"),),
        (("Content-Encoding", "deflate"),),
        (("content-encoding", "identity"),),
    ):
        assert opaque_coding(_headers(*decoded)) is None
    assert opaque_coding(_headers(("Content-Encoding", "x-gzip"))) == "x-gzip"
    assert opaque_coding(_headers(("Content-Encoding", "br"))) == "br"
    assert opaque_coding(_headers(("Content-Encoding", "gzip, br"))) == "gzip, br"
    assert opaque_coding(_headers(("Content-Encoding", "gzip"), ("Content-Encoding", "gzip"))) == "gzip, gzip"


# -- audit ----------------------------------------------------------------------------------


def test_redacted_path() -> None:
    assert redacted_path("/p", "", ["key"]) == "/p"
    assert redacted_path("/p", "a=%20b", []) == "/p?a=%20b"
    assert (
        redacted_path("/p", f"a=%20b&c&KEY=x&key={SECRET}", ["key"])
        == "/p?a=%20b&c&KEY=[REDACTED]&key=[REDACTED]"
    )
    assert redacted_path("/p", f"api+key={SECRET}", ["api key"]) == "/p?api+key=[REDACTED]"
