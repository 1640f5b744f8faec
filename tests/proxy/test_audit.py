"""The audit trail of proxied calls, the stats of proxy info, and organization isolation."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from .support import TOKEN, Gateway, LocalUpstream

REDACTED = "[REDACTED]"


def _call_id(gw: Gateway, connection: str, status: int, **request: Any) -> str:
    response = gw.call(connection, **request)
    assert response.status_code == status, response.text
    body = response.json()
    return str(body["data"]["proxyCallId"] if status == 200 else body["metadata"]["proxyCallId"])


def _all_calls(gw: Gateway, connection: str, limit: int) -> list[dict[str, Any]]:
    """Every record, following links.next."""
    page = gw.calls(connection, limit=limit)
    records = list(page["data"])
    while page["links"]["next"]:
        assert len(page["data"]) == limit
        response = gw.client.get(page["links"]["next"])
        assert response.status_code == 200, response.text
        page = response.json()
        records.extend(page["data"])
    return records


def test_calls_are_audited_newest_first_with_redacted_credentials(
    gw_a: Gateway, org_a: Any, httpbin_url: str
) -> None:
    connection = gw_a.create(httpbin_url, auth={"type": "query", "name": "api_key", "value": TOKEN})
    made = [
        _call_id(gw_a, connection, 200, method="GET", path="/get", query={"a": "1"}),
        _call_id(gw_a, connection, 200, method="GET", path="/status/404"),
        _call_id(gw_a, connection, 200, method="DELETE", path="/status/503", rawQuery="x=%20y"),
        _call_id(gw_a, connection, 200, method="POST", path="/status/201", body={"k": "v"}),
        _call_id(gw_a, connection, 400, method="GET", path="/get", query={"api_key": "mine"}),
    ]
    records = _all_calls(gw_a, connection, limit=2)
    assert [record["proxyCallId"] for record in records] == made[::-1]
    by_id = {record["proxyCallId"]: record for record in records}

    ok = by_id[made[0]]
    assert (ok["method"], ok["status"], ok["outcome"]) == ("GET", 200, "ok")
    assert ok["path"] == f"/get?a=1&api_key={REDACTED}"
    assert ok["principalId"] == org_a.user_id
    assert ok["dialect"] == "polytomic"
    assert ok["bytesOut"] > 0 and ok["truncated"] is False
    assert ok["createdAt"].endswith("Z")

    assert (by_id[made[1]]["status"], by_id[made[1]]["outcome"]) == (404, "ok")
    upstream_5xx = by_id[made[2]]
    assert (upstream_5xx["method"], upstream_5xx["status"], upstream_5xx["outcome"]) == ("DELETE", 503, "ok")
    assert upstream_5xx["path"] == f"/status/503?x=%20y&api_key={REDACTED}"
    created = by_id[made[3]]
    assert (created["method"], created["status"], created["bytesIn"]) == ("POST", 201, len(b'{"k":"v"}'))
    refused = by_id[made[4]]
    assert (refused["status"], refused["outcome"]) == (None, "locked_query")
    assert "api_key" in refused["error"]

    assert TOKEN not in json.dumps(records)

    stats = gw_a.info(connection)["stats"]
    assert stats["proxyCallsLast24h"] == 5
    assert stats["callsLast24h"] == 5
    assert (stats["proxy2xxLast24h"], stats["proxy4xxLast24h"], stats["proxy5xxLast24h"]) == (2, 1, 1)
    assert stats["lastProxyCallAt"] == records[0]["createdAt"]


def test_failed_calls_are_audited_with_their_outcome(
    gw_a: Gateway, httpbin_url: str, upstream: LocalUpstream
) -> None:
    locked = gw_a.create(upstream.url(), auth={"type": "bearer", "token": TOKEN})
    call_id = _call_id(gw_a, locked, 400, method="GET", path="/x", headers={"Authorization": "Bearer mine"})
    blocked = _call_id(gw_a, locked, 400, method="GET", path="/x", headers={"Cookie": "a=b"})
    invalid = _call_id(gw_a, locked, 400, method="GET", path="/../x")
    gw_a.set_enabled(locked, False)
    disabled = _call_id(gw_a, locked, 403, method="GET", path="/x")
    gw_a.set_enabled(locked, True)
    records = gw_a.calls(locked)["data"]
    outcomes = {record["proxyCallId"]: record["outcome"] for record in records}
    requested = {record["proxyCallId"]: (record["method"], record["path"]) for record in records}
    assert requested[call_id] == ("GET", "/x")  # refused calls still say what was asked
    assert requested[invalid] == ("GET", "/../x")
    assert outcomes == {
        call_id: "locked_header",
        blocked: "blocked_header",
        invalid: "invalid_proxy_request",
        disabled: "proxy_disabled",
    }

    denied = gw_a.create("http://192.168.1.1")
    denied_id = _call_id(gw_a, denied, 403, method="GET", path="/admin")
    [record] = gw_a.calls(denied)["data"]
    assert (record["proxyCallId"], record["outcome"], record["status"]) == (denied_id, "egress_denied", None)
    assert (record["method"], record["path"]) == ("GET", "/admin")

    slow = gw_a.create(httpbin_url, proxy={"timeout_ms": 300})
    slow_id = _call_id(gw_a, slow, 504, method="GET", path="/delay/2")
    [record] = gw_a.calls(slow)["data"]
    assert (record["proxyCallId"], record["outcome"]) == (slow_id, "upstream_timeout")
    stats = gw_a.info(slow)["stats"]
    assert (stats["proxyCallsLast24h"], stats["proxy2xxLast24h"], stats["proxy5xxLast24h"]) == (1, 0, 0)


def test_calls_listing_validation(gw_a: Gateway, upstream: LocalUpstream) -> None:
    connection = gw_a.create(upstream.url())
    assert gw_a.calls(connection) == {"data": [], "links": {"next": None}}
    for limit in ("0", "201", "-1", "abc", "1.5"):
        response = gw_a.client.get(f"/api/connections/{connection}/proxy/calls", params={"limit": limit})
        assert response.status_code == 400, limit
    response = gw_a.client.get(f"/api/connections/{connection}/proxy/calls", params={"cursor": "garbage!"})
    assert response.status_code == 400
    assert response.json()["key"] == "invalid_cursor"
    ids = [_call_id(gw_a, connection, 200, method="GET", path=f"/page/{n}") for n in range(5)]
    assert [r["proxyCallId"] for r in _all_calls(gw_a, connection, limit=1)] == ids[::-1]
    assert [r["proxyCallId"] for r in _all_calls(gw_a, connection, limit=5)] == ids[::-1]
    assert [r["proxyCallId"] for r in _all_calls(gw_a, connection, limit=200)] == ids[::-1]


@pytest.mark.parametrize(
    ("auth", "locked_headers", "locked_query"),
    [
        ({"type": "bearer", "token": TOKEN}, ["Authorization"], {}),
        ({"type": "basic", "username": "u", "password": TOKEN}, ["Authorization"], {}),
        ({"type": "header", "name": "X-Api-Key", "value": TOKEN}, ["X-Api-Key"], {}),
        ({"type": "query", "name": "api_key", "value": TOKEN}, [], {"api_key": REDACTED}),
        ({"type": "none"}, [], {}),
    ],
    ids=["bearer", "basic", "header", "query", "none"],
)
def test_info_matches_the_enforced_configuration(
    gw_a: Gateway,
    httpbin_url: str,
    auth: dict[str, str],
    locked_headers: list[str],
    locked_query: dict[str, str],
) -> None:
    limits = {
        "rate_limit_per_minute": 7,
        "timeout_ms": 1500,
        "max_request_body_bytes": 4096,
        "max_response_body_bytes": 2048,
    }
    connection = gw_a.create(
        httpbin_url + "/anything", auth=auth, proxy=limits, headers={"X-Team": "t"}, query={"v": "2"}
    )
    info = gw_a.info(connection)
    assert TOKEN not in json.dumps(info)
    base = info["inheritedBase"]
    assert base["baseUrl"] == httpbin_url + "/anything"
    assert base["lockedHeaders"] == [
        {"name": name, "value": REDACTED, "redacted": True} for name in locked_headers
    ]
    assert base["lockedQuery"] == locked_query
    contract = info["requestContract"]
    assert contract["rateLimitPerMinute"] == 7
    assert contract["timeoutMs"] == 1500
    assert contract["maxRequestBodyBytes"] == 4096
    assert contract["maxResponseBodyBytes"] == 2048
    for name in locked_headers:
        assert name in contract["blockedRequestHeaders"]
    # ...and those values are what the proxy enforces.
    data = gw_a.ok(connection, method="GET", path="/x" * 1500)
    assert data["truncated"] is True
    assert len(data["body"].encode()) <= 2048
    gw_a.refused(connection, 413, "request_body_too_large", method="POST", path="/", body="b" * 4097)
    for name in locked_headers:
        gw_a.refused(connection, 400, "locked_header", method="GET", path="/", headers={name: "x"})
    for name in locked_query:
        gw_a.refused(connection, 400, "locked_query", method="GET", path="/", query={name: "x"})
    echo = json.loads(gw_a.ok(connection, method="GET", path="/y")["body"])
    assert echo["headers"]["X-Team"] == "t"
    assert echo["args"]["v"] == "2"


def test_other_organizations_get_404_everywhere(
    gw_a: Gateway, gw_b: Gateway, upstream: LocalUpstream
) -> None:
    connection = gw_a.create(upstream.url(), auth={"type": "bearer", "token": TOKEN})
    gw_a.ok(connection, method="GET", path="/isolation/a")
    before = upstream.hits("/isolation/")
    prefix = f"/api/connections/{connection}"
    attempts = [
        gw_b.call(connection, method="GET", path="/isolation/b"),
        gw_b.client.get(f"{prefix}/proxy/info"),
        gw_b.client.get(f"{prefix}/proxy/settings"),
        gw_b.client.put(f"{prefix}/proxy/settings", json={"enabled": False}),
        gw_b.client.get(f"{prefix}/proxy/calls"),
    ]
    for response in attempts:
        assert response.status_code == 404, response.text
        assert response.json()["key"] == "not_found"
        assert TOKEN not in response.text
    assert upstream.hits("/isolation/") == before
    assert gw_a.client.get(f"{prefix}/proxy/settings").json()["data"]["enabled"] is True
    assert len(gw_a.calls(connection)["data"]) == 1
    unknown = str(uuid.uuid4())
    for response in (
        gw_a.call(unknown, method="GET", path="/"),
        gw_a.client.get(f"/api/connections/{unknown}/proxy/info"),
        gw_a.client.get(f"/api/connections/{unknown}/proxy/calls"),
        gw_a.call("not-a-uuid", method="GET", path="/"),
    ):
        assert response.status_code == 404


def test_proxy_settings(gw_a: Gateway, upstream: LocalUpstream) -> None:
    connection = gw_a.create(upstream.url())
    url = f"/api/connections/{connection}/proxy/settings"
    assert gw_a.client.get(url).json()["data"] == {
        "connectionId": connection,
        "parentConnectionId": None,
        "backendType": "api",
        "enabled": True,
        "supported": True,
    }
    for bad in ({}, {"enabled": None}, {"enabled": "yes"}, {"enabled": 1}, {"enabled": True, "x": 1}, [True]):
        response = gw_a.client.put(url, json=bad)
        assert response.status_code == 400, (bad, response.text)
    assert gw_a.set_enabled(connection, False)["enabled"] is False
    before = upstream.hits("/disabled")
    gw_a.refused(connection, 403, "proxy_disabled", method="GET", path="/disabled")
    gw_a.refused(connection, 403, "proxy_disabled", method="GET", path="/../disabled")
    assert upstream.hits("/disabled") == before
    assert gw_a.info(connection)["connectionId"] == connection
    assert gw_a.set_enabled(connection, True)["enabled"] is True
    assert gw_a.ok(connection, method="GET", path="/disabled")["status"] == 200
