"""Echo scrubbing: a credential the upstream echoes back never reaches the caller, in the body,
in a header, in the content type, in a binary body, or split at the truncation point (a cut body
always loses the same fixed tail, see ``test_truncation_oracle``)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import httpx
import pytest

from keyhole.vault.scrub import Scrubber

from .support import TOKEN, Gateway, LocalUpstream

REDACTED = "[REDACTED]"
TAIL = Scrubber.of([TOKEN]).tail  # what a cut body of a bearer connection on TOKEN withholds


def _raw(data: dict[str, Any]) -> bytes:
    if data["bodyEncoding"] == "base64":
        return base64.b64decode(data["body"])
    return str(data["body"]).encode()


def _call(gw: Gateway, connection: str, **request: Any) -> tuple[httpx.Response, dict[str, Any]]:
    response = gw.call(connection, **request)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return response, data


def _assert_clean(response: httpx.Response, data: dict[str, Any], *secrets: str) -> None:
    for secret in secrets:
        assert secret not in response.text
        assert secret.encode() not in _raw(data)
        assert secret not in json.dumps(data["headers"])
        assert secret not in data["contentType"]


@pytest.fixture(scope="module")
def bearer(gw_a: Gateway, httpbin_url: str) -> str:
    return gw_a.create(httpbin_url, auth={"type": "bearer", "token": TOKEN})


def test_bearer_echo_in_body_is_scrubbed(gw_a: Gateway, bearer: str) -> None:
    response, data = _call(gw_a, bearer, method="GET", path="/bearer")
    assert json.loads(data["body"]) == {"authenticated": True, "token": REDACTED}
    _assert_clean(response, data, TOKEN)
    response, data = _call(gw_a, bearer, method="GET", path="/headers")
    assert json.loads(data["body"])["headers"]["Authorization"] == f"Bearer {REDACTED}"
    _assert_clean(response, data, TOKEN)


def test_echo_in_response_header_is_scrubbed(gw_a: Gateway, bearer: str) -> None:
    response, data = _call(
        gw_a,
        bearer,
        method="GET",
        path="/response-headers",
        query={"X-Echo": TOKEN, "X-Wrapped": f"a{TOKEN}b"},
    )
    assert data["headers"]["X-Echo"] == REDACTED
    assert data["headers"]["X-Wrapped"] == f"a{REDACTED}b"
    _assert_clean(response, data, TOKEN)


def test_echo_in_a_redirect_location_is_scrubbed(gw_a: Gateway, bearer: str) -> None:
    response, data = _call(
        gw_a,
        bearer,
        method="GET",
        path="/redirect-to",
        query={"url": f"https://elsewhere.example/?t={TOKEN}"},
    )
    assert data["status"] == 302
    assert data["headers"]["Location"] == f"https://elsewhere.example/?t={REDACTED}"
    _assert_clean(response, data, TOKEN)


def test_custom_header_credential_echo_is_scrubbed(gw_a: Gateway, httpbin_url: str) -> None:
    connection = gw_a.create(httpbin_url, auth={"type": "header", "name": "X-Api-Key", "value": TOKEN})
    response, data = _call(gw_a, connection, method="GET", path="/anything")
    assert json.loads(data["body"])["headers"]["X-Api-Key"] == REDACTED
    _assert_clean(response, data, TOKEN)


def test_basic_credential_echo_is_scrubbed(gw_a: Gateway, httpbin_url: str) -> None:
    connection = gw_a.create(httpbin_url, auth={"type": "basic", "username": "robot", "password": TOKEN})
    encoded = base64.b64encode(f"robot:{TOKEN}".encode()).decode()
    response, data = _call(gw_a, connection, method="GET", path=f"/basic-auth/robot/{TOKEN}")
    assert data["status"] == 200  # the credential was really injected
    _assert_clean(response, data, TOKEN, encoded)
    response, data = _call(gw_a, connection, method="GET", path="/headers")
    assert json.loads(data["body"])["headers"]["Authorization"] == f"Basic {REDACTED}"
    _assert_clean(response, data, TOKEN, encoded)


@pytest.mark.parametrize("secret", [TOKEN, "s3cr3t/with+plus=and space&amp"])
def test_query_credential_echo_is_scrubbed(gw_a: Gateway, httpbin_url: str, secret: str) -> None:
    connection = gw_a.create(httpbin_url, auth={"type": "query", "name": "api_key", "value": secret})
    response, data = _call(gw_a, connection, method="GET", path="/anything", query={"a": "1"})
    echo = json.loads(data["body"])
    assert echo["args"] == {"a": "1", "api_key": REDACTED}
    _assert_clean(response, data, secret)
    assert "api_key=" in echo["url"]
    assert secret.split("/")[0] not in echo["url"]


def test_echo_in_a_binary_body_is_scrubbed(gw_a: Gateway, upstream: LocalUpstream) -> None:
    connection = gw_a.create(upstream.url(), auth={"type": "bearer", "token": TOKEN})
    response, data = _call(gw_a, connection, method="GET", path="/echo-binary")
    assert data["bodyEncoding"] == "base64"
    assert _raw(data) == b"\x00\xff\xfebin:Bearer " + REDACTED.encode()
    _assert_clean(response, data, TOKEN)


def test_echo_in_the_content_type_is_scrubbed(gw_a: Gateway, upstream: LocalUpstream) -> None:
    connection = gw_a.create(upstream.url(), auth={"type": "bearer", "token": TOKEN})
    response, data = _call(gw_a, connection, method="GET", path="/echo-content-type")
    assert data["contentType"] == f"text/plain; echo=Bearer {REDACTED}"
    _assert_clean(response, data, TOKEN)


@pytest.mark.parametrize("inside", [1, 5, len(TOKEN) // 2, len(TOKEN) - 1])
def test_token_split_at_the_truncation_point_is_not_leaked(
    gw_a: Gateway, httpbin_url: str, inside: int
) -> None:
    connection = gw_a.create(
        httpbin_url, auth={"type": "bearer", "token": TOKEN}, proxy={"max_response_body_bytes": 1024}
    )
    text = "A" * (1024 - inside) + TOKEN + " and more after the token"
    path = "/base64/" + base64.urlsafe_b64encode(text.encode()).decode()
    response, data = _call(gw_a, connection, method="GET", path=path)
    assert data["truncated"] is True
    assert data["body"] == "A" * (1024 - TAIL)  # the fixed tail is dropped, whatever it holds
    for length in range(1, len(TOKEN)):
        assert not data["body"].endswith(TOKEN[:length])
    _assert_clean(response, data, TOKEN)


@pytest.mark.parametrize("inside", [1, 9, len(TOKEN) - 1])
def test_token_split_at_the_truncation_point_of_a_binary_body(
    gw_a: Gateway, upstream: LocalUpstream, inside: int
) -> None:
    connection = gw_a.create(
        upstream.url(), auth={"type": "bearer", "token": TOKEN}, proxy={"max_response_body_bytes": 1024}
    )
    prefix = b"\x00\xff\xfebin:Bearer "
    pad = 1024 - len(prefix) - inside
    response, data = _call(gw_a, connection, method="GET", path="/echo-binary", query={"pad": pad})
    assert data["truncated"] is True
    assert data["bodyEncoding"] == "base64"
    assert _raw(data) == (b"\x00\xff\xfe" + b"\x00" * pad + b"bin:Bearer ")[: 1024 - TAIL]
    _assert_clean(response, data, TOKEN)


def test_token_fully_inside_the_cap_is_replaced(gw_a: Gateway, httpbin_url: str) -> None:
    connection = gw_a.create(
        httpbin_url, auth={"type": "bearer", "token": TOKEN}, proxy={"max_response_body_bytes": 1024}
    )
    text = "B" * 100 + TOKEN + "C" * 2000
    path = "/base64/" + base64.urlsafe_b64encode(text.encode()).decode()
    response, data = _call(gw_a, connection, method="GET", path=path)
    assert data["truncated"] is True
    assert data["body"].startswith("B" * 100 + REDACTED + "CCC")
    _assert_clean(response, data, TOKEN)


def test_scrubbing_can_be_switched_off(gw_a: Gateway, httpbin_url: str) -> None:
    connection = gw_a.create(
        httpbin_url, auth={"type": "bearer", "token": TOKEN}, proxy={"scrub_echoed_secrets": False}
    )
    assert gw_a.info(connection)["requestContract"]["scrubEchoedSecrets"] is False
    _, data = _call(gw_a, connection, method="GET", path="/bearer")
    assert json.loads(data["body"]) == {"authenticated": True, "token": TOKEN}
    _, data = _call(gw_a, connection, method="GET", path="/response-headers", query={"X-Echo": TOKEN})
    assert data["headers"]["X-Echo"] == TOKEN


def test_header_named_after_the_token_is_dropped(gw_a: Gateway, bearer: str) -> None:
    response, data = _call(
        gw_a, bearer, method="GET", path="/response-headers", rawQuery=f"{TOKEN}=x&X-Other=y"
    )
    assert data["headers"]["X-Other"] == "y"
    _assert_clean(response, data, TOKEN)


def test_json_escaped_header_echo_is_scrubbed(gw_a: Gateway, httpbin_url: str) -> None:
    secret = 'tok"with\\quotes'
    connection = gw_a.create(httpbin_url, auth={"type": "header", "name": "X-Key", "value": secret})
    response, data = _call(gw_a, connection, method="GET", path="/headers")
    assert json.loads(data["body"])["headers"]["X-Key"] == REDACTED
    _assert_clean(response, data, secret, json.dumps(secret)[1:-1])


@pytest.mark.parametrize("secret", ['tok"with\\quotes', "tok-\u00fcnicode-\u2713"])
def test_json_escaped_query_echo_is_scrubbed(gw_a: Gateway, httpbin_url: str, secret: str) -> None:
    connection = gw_a.create(httpbin_url, auth={"type": "query", "name": "k", "value": secret})
    response, data = _call(gw_a, connection, method="GET", path="/anything")
    echo = json.loads(data["body"])
    assert echo["args"]["k"] == REDACTED
    assert "k=" in echo["url"]
    _assert_clean(response, data, secret, json.dumps(secret)[1:-1])


def test_gzip_echo_is_decoded_and_scrubbed(gw_a: Gateway, upstream: LocalUpstream) -> None:
    connection = gw_a.create(upstream.url(), auth={"type": "bearer", "token": TOKEN})
    response, data = _call(gw_a, connection, method="GET", path="/encoded", query={"enc": "gzip"})
    assert json.loads(data["body"]) == {"echo": f"Bearer {REDACTED}"}
    _assert_clean(response, data, TOKEN)


@pytest.mark.parametrize(
    "codings", [["x-gzip"], ["compress"], ["gzip, gzip"], ["gzip", "gzip"], ["x-custom"]]
)
def test_undecodable_content_encoding_cannot_smuggle_an_echo(
    gw_a: Gateway, upstream: LocalUpstream, codings: list[str]
) -> None:
    """The proxy strips Content-Encoding, so a body it could not decode would carry the credential
    compressed past the scrubber (a caller can ask for such codings with Accept-Encoding)."""
    connection = gw_a.create(upstream.url(), auth={"type": "bearer", "token": TOKEN})
    response = gw_a.call(connection, method="GET", path="/encoded", query={"enc": codings})
    assert response.status_code == 502, response.text
    assert response.json()["key"] == "upstream_encoding_unsupported"
    assert TOKEN not in response.text
    assert gw_a.calls(connection, limit=1)["data"][0]["outcome"] == "upstream_encoding_unsupported"


def test_undecodable_content_encoding_passes_when_scrubbing_is_off(
    gw_a: Gateway, upstream: LocalUpstream
) -> None:
    connection = gw_a.create(
        upstream.url(), auth={"type": "bearer", "token": TOKEN}, proxy={"scrub_echoed_secrets": False}
    )
    _, data = _call(gw_a, connection, method="GET", path="/encoded", query={"enc": "x-gzip"})
    assert data["bodyEncoding"] == "base64"
    assert gzip.decompress(_raw(data)) == f'{{"echo": "Bearer {TOKEN}"}}'.encode()


def test_no_credential_means_nothing_to_scrub(gw_a: Gateway, upstream: LocalUpstream) -> None:
    connection = gw_a.create(upstream.url())
    _, data = _call(gw_a, connection, method="GET", path="/encoded", query={"enc": "x-gzip"})
    assert gzip.decompress(_raw(data)) == b'{"echo": ""}'
