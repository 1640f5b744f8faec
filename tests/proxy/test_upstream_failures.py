"""Upstream outcomes: status kept inside the envelope, timeout 504, unreachable 502, egress 403,
redirects never followed (spec §2.1, §4)."""

from __future__ import annotations

from typing import Any

import pytest

from .support import Gateway, LocalUpstream, closed_port


@pytest.fixture(scope="module")
def plain(gw_a: Gateway, httpbin_url: str) -> str:
    return gw_a.create(httpbin_url)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299, 400, 401, 404, 418, 429, 500, 502, 503, 504])
def test_upstream_status_is_kept_inside_a_200(gw_a: Gateway, plain: str, status: int) -> None:
    response = gw_a.call(plain, method="GET", path=f"/status/{status}")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == status
    assert isinstance(data["body"], str)
    assert "retry-after" not in response.headers  # an upstream 429/503 must not make clients back off here


def _last_call(gw: Gateway, connection: str) -> dict[str, Any]:
    calls = gw.calls(connection, limit=1)["data"]
    assert calls, "the call was not audited"
    record: dict[str, Any] = calls[0]
    return record


def test_a_failed_write_tells_clients_not_to_retry(gw_a: Gateway) -> None:
    connection = gw_a.create(f"http://127.0.0.1:{closed_port()}")
    post = gw_a.call(connection, method="POST", path="/x", body={"a": 1})
    assert post.status_code == 502
    assert post.headers["x-should-retry"] == "false"
    get = gw_a.call(connection, method="GET", path="/x")
    assert get.status_code == 502
    assert "x-should-retry" not in get.headers


def test_timeout_is_504(gw_a: Gateway, httpbin_url: str) -> None:
    connection = gw_a.create(httpbin_url, proxy={"timeout_ms": 500})
    assert gw_a.info(connection)["requestContract"]["timeoutMs"] == 500
    body = gw_a.refused(connection, 504, "upstream_timeout", method="GET", path="/delay/3")
    call_id = body["metadata"]["proxyCallId"]
    record = _last_call(gw_a, connection)
    assert record["proxyCallId"] == call_id
    assert record["outcome"] == "upstream_timeout"
    assert record["status"] is None
    assert record["path"] == "/delay/3"


def test_timeout_while_the_body_streams_is_504(gw_a: Gateway, httpbin_url: str) -> None:
    connection = gw_a.create(httpbin_url, proxy={"timeout_ms": 800})
    # /drip sends headers at once, then one byte per 0.5 s for 5 s.
    gw_a.refused(
        connection, 504, "upstream_timeout", method="GET", path="/drip", query={"duration": 5, "numbytes": 10}
    )


def test_closed_port_is_502(gw_a: Gateway) -> None:
    connection = gw_a.create(f"http://127.0.0.1:{closed_port()}")
    body = gw_a.refused(connection, 502, "upstream_unreachable", method="GET", path="/")
    assert "connection refused" in body["message"]
    assert _last_call(gw_a, connection)["outcome"] == "upstream_unreachable"


def test_unresolvable_host_is_502(gw_a: Gateway) -> None:
    connection = gw_a.create("http://no-such-host.invalid")
    gw_a.refused(connection, 502, "upstream_unreachable", method="GET", path="/")


def test_connection_cut_mid_body_is_502(gw_a: Gateway, upstream: LocalUpstream) -> None:
    connection = gw_a.create(upstream.url())
    gw_a.refused(connection, 502, "upstream_unreachable", method="GET", path="/cut")


@pytest.mark.parametrize("url", ["http://10.0.0.1", "http://169.254.169.254", "http://[::1]:80"])
def test_non_global_target_outside_the_allow_list_is_403(gw_a: Gateway, url: str) -> None:
    connection = gw_a.create(url)
    body = gw_a.refused(connection, 403, "egress_denied", method="GET", path="/latest/meta-data/")
    assert "proxyCallId" in body["metadata"]
    record = _last_call(gw_a, connection)
    assert record["outcome"] == "egress_denied"
    assert record["status"] is None


def test_redirects_are_returned_not_followed(gw_a: Gateway, plain: str, upstream: LocalUpstream) -> None:
    landing = f"{upstream.url()}/landing-{id(plain)}"
    before = upstream.hits("/landing-")
    data = gw_a.ok(plain, method="GET", path="/redirect-to", query={"url": landing})
    assert data["status"] == 302
    assert data["headers"]["Location"] == landing
    data = gw_a.ok(plain, method="GET", path="/redirect-to", query={"url": landing, "status_code": 307})
    assert data["status"] == 307
    assert upstream.hits("/landing-") == before
    assert gw_a.ok(plain, method="GET", path="/redirect/3")["status"] == 302
    assert gw_a.ok(plain, method="GET", path="/absolute-redirect/2")["status"] == 302


def test_unparsable_base_url_is_refused_on_save(gw_a: Gateway, upstream: LocalUpstream) -> None:
    url = f"http://127.0.0.1:{upstream.port}\\@evil.example"
    before = upstream.accepts
    for validate in (True, False):
        response = gw_a.client.post(
            "/api/connections",
            json={"name": "bad", "type": "api", "configuration": {"url": url}, "validate": validate},
        )
        assert response.status_code == 422, response.text
        assert response.json()["key"] == "invalid_configuration"
    assert upstream.accepts == before
