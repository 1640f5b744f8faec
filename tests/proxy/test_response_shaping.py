"""Shaping of upstream answers: blocked headers removed, repeats joined, body encodings and
truncation at ``max_response_body_bytes`` (spec §2.1, §7.2, §7.3)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from .support import Gateway, RawUpstream


@pytest.fixture(scope="module")
def plain(gw_a: Gateway, httpbin_url: str) -> str:
    return gw_a.create(httpbin_url)


@pytest.fixture(scope="module")
def capped(gw_a: Gateway, httpbin_url: str) -> str:
    return gw_a.create(httpbin_url, proxy={"max_response_body_bytes": 1024})


def _raw(data: dict[str, object]) -> bytes:
    body = data["body"]
    assert isinstance(body, str)
    if data["bodyEncoding"] == "base64":
        return base64.b64decode(body, validate=True)
    assert data["bodyEncoding"] == "utf-8"
    return body.encode()


FRAMING = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}


def _names(data: dict[str, object]) -> set[str]:
    headers = data["headers"]
    assert isinstance(headers, dict)
    assert all(isinstance(value, str) for value in headers.values())
    return {name.lower() for name in headers}


def test_blocked_response_headers_are_removed(gw_a: Gateway, plain: str) -> None:
    data = gw_a.ok(
        plain,
        method="GET",
        path="/response-headers",
        rawQuery="Set-Cookie=a%3Db&X-Powered-By=x&Set-Cookie2=c&X-Kept=yes",
    )
    names = _names(data)
    assert {"set-cookie", "set-cookie2", "x-powered-by"}.isdisjoint(names)
    assert not FRAMING & names
    assert data["headers"]["X-Kept"] == "yes"


def test_cookies_set_by_redirects_are_removed(gw_a: Gateway, plain: str) -> None:
    data = gw_a.ok(plain, method="GET", path="/cookies/set", query={"a": "b"})
    assert data["status"] == 302
    assert "set-cookie" not in _names(data)
    assert data["headers"]["Location"] == "/cookies"
    # Nothing was kept either: a later call sends no cookie upstream.
    assert json.loads(gw_a.ok(plain, method="GET", path="/cookies")["body"]) == {"cookies": {}}


def test_headers_named_by_connection_are_removed(gw_a: Gateway, plain: str) -> None:
    data = gw_a.ok(
        plain, method="GET", path="/response-headers", rawQuery="Connection=X-Hop&X-Hop=1&X-Stay=2"
    )
    names = _names(data)
    assert "x-hop" not in names
    assert "x-stay" in names


def test_repeated_headers_are_joined(gw_a: Gateway, plain: str) -> None:
    data = gw_a.ok(plain, method="GET", path="/response-headers", rawQuery="X-Dup=1&X-Dup=2&x-dup=3")
    dup = {name: value for name, value in data["headers"].items() if name.lower() == "x-dup"}
    assert list(dup.values()) == ["1, 2, 3"]


def test_gzip_is_decoded_and_its_header_dropped(gw_a: Gateway, plain: str) -> None:
    data = gw_a.ok(plain, method="GET", path="/gzip")
    assert json.loads(data["body"])["gzipped"] is True
    assert data["bodyEncoding"] == "utf-8"
    assert "content-encoding" not in _names(data)


def test_binary_bodies_are_base64(gw_a: Gateway, plain: str, httpbin_url: str) -> None:
    data = gw_a.ok(plain, method="GET", path="/bytes/300", query={"seed": 7})
    assert data["bodyEncoding"] == "base64"
    assert data["contentType"] == "application/octet-stream"
    assert _raw(data) == httpx.get(f"{httpbin_url}/bytes/300?seed=7").content
    png = gw_a.ok(plain, method="GET", path="/image/png")
    assert png["bodyEncoding"] == "base64"
    assert _raw(png).startswith(b"\x89PNG")


def test_text_bodies_are_utf8(gw_a: Gateway, plain: str, httpbin_url: str) -> None:
    data = gw_a.ok(plain, method="GET", path="/encoding/utf8")
    assert data["bodyEncoding"] == "utf-8"
    assert data["body"] == httpx.get(f"{httpbin_url}/encoding/utf8").text
    assert data["truncated"] is False


def test_empty_body_is_an_empty_string(gw_a: Gateway, plain: str) -> None:
    data = gw_a.ok(plain, method="GET", path="/status/204")
    assert (data["status"], data["body"], data["bodyEncoding"]) == (204, "", "utf-8")


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/bytes/5000", {"seed": 3}),
        ("/stream-bytes/5000", {"seed": 3, "chunk_size": 333}),
        ("/bytes/1025", {"seed": 3}),
        ("/range/5000", {}),
        ("/range/5000", {"chunk_size": 100}),
    ],
)
def test_bodies_over_the_cap_are_truncated(
    gw_a: Gateway, capped: str, httpbin_url: str, path: str, query: dict[str, int]
) -> None:
    data = gw_a.ok(capped, method="GET", path=path, query=query)
    assert data["truncated"] is True
    full = httpx.get(httpbin_url + path, params=query).content
    assert _raw(data) == full[:1024]
    assert gw_a.calls(capped, limit=1)["data"][0]["truncated"] is True


def test_body_exactly_at_the_cap_is_not_truncated(gw_a: Gateway, capped: str) -> None:
    data = gw_a.ok(capped, method="GET", path="/bytes/1024", query={"seed": 1})
    assert data["truncated"] is False
    assert len(_raw(data)) == 1024


def test_truncation_inside_a_multibyte_character_stays_utf8(gw_a: Gateway, capped: str) -> None:
    text = "a" + "\u00e9" * 600  # 1201 bytes: the cap falls inside the 512th "é"
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    data = gw_a.ok(capped, method="GET", path=f"/base64/{encoded}")
    assert data["truncated"] is True
    assert data["bodyEncoding"] == "utf-8"
    assert data["body"] == "a" + "\u00e9" * 511


def test_response_cap_below_1024_is_rejected(gw_a: Gateway, httpbin_url: str) -> None:
    response = gw_a.client.post(
        "/api/connections",
        json={
            "name": "tiny-cap",
            "type": "api",
            "configuration": {"url": httpbin_url, "proxy": {"max_response_body_bytes": 1023}},
            "validate": False,
        },
    )
    assert response.status_code == 422
    assert response.json()["key"] == "invalid_configuration"


def test_default_cap_is_one_mebibyte(gw_a: Gateway, plain: str) -> None:
    assert gw_a.info(plain)["requestContract"]["maxResponseBodyBytes"] == 1_048_576
    data = gw_a.ok(plain, method="GET", path="/bytes/102400")  # httpbin's own maximum
    assert data["truncated"] is False
    assert len(_raw(data)) == 102400


RAW_RESPONSES = {
    "/bad-header-bytes": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain; x=\xe9\r\n"
        b"X-Bin: a\xffb\r\nConnection: close\r\n\r\nok"
    ),
    "/odd-status": b"HTTP/1.1 999 Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    "/until-close": (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nread until close"
    ),
    "/http10": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nten",
    "/interim": (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    ),
    "/garbage": b"this is not HTTP\r\n\r\n",
    "/bad-header-name": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-\xff: 1\r\n\r\nok",
}


@pytest.fixture(scope="module")
def raw_connection(gw_a: Gateway) -> Iterator[str]:
    upstream = RawUpstream(RAW_RESPONSES).start()
    yield gw_a.create(upstream.url(), auth={"type": "bearer", "token": "raw-token"})
    upstream.stop()


def test_header_bytes_that_are_not_utf8_are_replaced(gw_a: Gateway, raw_connection: str) -> None:
    data = gw_a.ok(raw_connection, method="GET", path="/bad-header-bytes")
    assert data["headers"]["X-Bin"] == "a\ufffdb"
    assert data["contentType"] == "text/plain; x=\ufffd"
    assert data["body"] == "ok"


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/odd-status", 999, "ok"),
        ("/until-close", 200, "read until close"),
        ("/http10", 200, "ten"),
        ("/interim", 200, "ok"),
    ],
)
def test_unusual_but_valid_responses(
    gw_a: Gateway, raw_connection: str, path: str, status: int, body: str
) -> None:
    data = gw_a.ok(raw_connection, method="GET", path=path)
    assert (data["status"], data["body"]) == (status, body)


@pytest.mark.parametrize("path", ["/garbage", "/bad-header-name"])
def test_malformed_responses_are_502(gw_a: Gateway, raw_connection: str, path: str) -> None:
    body = gw_a.refused(raw_connection, 502, "upstream_unreachable", method="GET", path=path)
    assert "invalid HTTP response" in body["message"]
