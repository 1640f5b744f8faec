"""Bad input to the organization-wide log: a 400 in the Polytomic envelope naming the parameter,
for every parameter, and never a 500 for any cursor a caller could send."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foundation.helpers import assert_envelope

from .conftest import Population
from .support import LOG, assert_page_or_invalid_cursor, forged, mutated, page

A_UUID = str(uuid.uuid4())


BAD: dict[str, tuple[dict[str, str], str, str]] = {
    # name: (query, the parameter the error names, key)
    "limit 0": ({"limit": "0"}, "limit", "validation_error"),
    "limit 1001": ({"limit": "1001"}, "limit", "validation_error"),
    "limit abc": ({"limit": "abc"}, "limit", "validation_error"),
    "limit negative": ({"limit": "-1"}, "limit", "validation_error"),
    "limit fraction": ({"limit": "1.5"}, "limit", "validation_error"),
    "limit padded": ({"limit": " 5"}, "limit", "validation_error"),
    "limit superscript digit": ({"limit": "²"}, "limit", "validation_error"),
    "limit other-script digits": ({"limit": "٣"}, "limit", "validation_error"),
    "limit of 5000 digits": ({"limit": "9" * 5000}, "limit", "validation_error"),
    "connection_id not a uuid": ({"connection_id": "not-a-uuid"}, "connection_id", "validation_error"),
    "connection_id oversized": ({"connection_id": A_UUID * 30}, "connection_id", "validation_error"),
    "connection_id with NUL": ({"connection_id": A_UUID + "\x00"}, "connection_id", "validation_error"),
    "connection_id braced": ({"connection_id": "{" + A_UUID + "}"}, "connection_id", "validation_error"),
    "connection_id with newline": (
        {"connection_id": A_UUID[:-1] + "\n"},
        "connection_id",
        "validation_error",
    ),
    "outcome upper case": ({"outcome": "OK"}, "outcome", "validation_error"),
    "outcome oversized": ({"outcome": "a" * 65}, "outcome", "validation_error"),
    "outcome with NUL": ({"outcome": "ok\x00"}, "outcome", "validation_error"),
    "outcome with control": ({"outcome": "ok\x1b[31m"}, "outcome", "validation_error"),
    "outcome with quote": ({"outcome": "ok' OR '1'='1"}, "outcome", "validation_error"),
    "ok not a boolean": ({"ok": "yes"}, "ok", "validation_error"),
    "ok number": ({"ok": "2"}, "ok", "validation_error"),
    "status_class 6xx": ({"status_class": "6xx"}, "status_class", "validation_error"),
    "status_class a status": ({"status_class": "404"}, "status_class", "validation_error"),
    "status_class two": ({"status_class": "2xx,4xx"}, "status_class", "validation_error"),
    "status_class oversized": ({"status_class": "x" * 10_000}, "status_class", "validation_error"),
    "since words": ({"since": "yesterday"}, "since", "validation_error"),
    "since a date without offset": ({"since": "2025-01-31"}, "since", "validation_error"),
    "since without offset": ({"since": "2025-01-31T12:00:00"}, "since", "validation_error"),
    "since month 13": ({"since": "2025-13-01T00:00:00Z"}, "since", "validation_error"),
    "since with an unencoded plus": ({"since": "2025-01-31T12:00:00 02:00"}, "since", "validation_error"),
    "since before year 1 in UTC": ({"since": "0001-01-01T00:00:00+01:00"}, "since", "validation_error"),
    "since oversized": ({"since": "2025-01-31T12:00:00Z" + "0" * 100}, "since", "validation_error"),
    "since with NUL": ({"since": "2025-01-31T12:00:00Z\x00"}, "since", "validation_error"),
    "until after year 9999 in UTC": ({"until": "9999-12-31T23:59:59-01:00"}, "until", "validation_error"),
    "until a number": ({"until": "1738324800"}, "until", "validation_error"),
    "since after until": (
        {"since": "2025-01-31T12:00:01Z", "until": "2025-01-31T12:00:00Z"},
        "since",
        "validation_error",
    ),
    "since after until across offsets": (
        {"since": "2025-01-31T12:00:00Z", "until": "2025-01-31T13:00:00+02:00"},
        "since",
        "validation_error",
    ),
    "cursor garbage": ({"cursor": "garbage!"}, "cursor", "invalid_cursor"),
    "cursor not base64": ({"cursor": "%%%"}, "cursor", "invalid_cursor"),
    "cursor oversized": ({"cursor": "A" * 10_000}, "cursor", "invalid_cursor"),
    "cursor without separator": ({"cursor": forged("2025-01-31T12:00:00+00:00")}, "cursor", "invalid_cursor"),
    "cursor forged id": (
        {"cursor": forged("2025-01-31T12:00:00+00:00|' OR 1=1 --")},
        "cursor",
        "invalid_cursor",
    ),
    "cursor NUL id": (
        {"cursor": forged(f"2025-01-31T12:00:00+00:00|{A_UUID}\x00")},
        "cursor",
        "invalid_cursor",
    ),
    "cursor NUL in time": (
        {"cursor": forged(f"2025-01-31T12:00:00+00:00\x00junk|{A_UUID}")},
        "cursor",
        "invalid_cursor",
    ),
    "cursor naive time": ({"cursor": forged(f"2025-01-31T12:00:00|{A_UUID}")}, "cursor", "invalid_cursor"),
    "cursor time overflow": (
        {"cursor": forged(f"0001-01-01T00:00:00+14:00|{A_UUID}")},
        "cursor",
        "invalid_cursor",
    ),
    "cursor not utf-8": (
        {"cursor": base64.urlsafe_b64encode(b"\xff\xfe|x").decode()},
        "cursor",
        "invalid_cursor",
    ),
    "unknown parameter": ({"status": "5xx"}, "status", "validation_error"),
    "camel-case parameter": ({"connectionId": A_UUID}, "connectionId", "validation_error"),
}


@pytest.mark.parametrize(("query", "field", "key"), BAD.values(), ids=BAD.keys())
def test_bad_parameters_are_named_in_a_400(
    population: Population, query: dict[str, str], field: str, key: str
) -> None:
    response = page(population.owner.client, query)
    body = assert_envelope(response, 400, key)
    assert set(body) == {"status", "message", "key", "metadata"}
    assert body["metadata"]["errors"][0]["field"] == field, body
    assert field in body["message"], body
    assert population.calls["a_ok"] not in response.text


def test_a_parameter_given_twice_is_refused(population: Population) -> None:
    response = population.owner.client.get(f"{LOG}?outcome=ok&outcome=locked_header")
    body = assert_envelope(response, 400, "validation_error")
    assert body["metadata"]["errors"][0]["field"] == "outcome"


def test_empty_values_count_as_absent(population: Population) -> None:
    response = population.owner.client.get(
        f"{LOG}?connection_id=&outcome=&ok=&status_class=&since=&until=&cursor="
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"] == population.listed


def test_the_connection_listing_limit_refuses_digits_int_would_choke_on(population: Population) -> None:
    """The per-connection listing shares the limit's parsing."""
    connection = population.connections["a"]
    for limit in ("²", "9" * 5000, "0", "201"):
        response = population.owner.client.get(
            f"/api/connections/{connection}/proxy/calls", params={"limit": limit}
        )
        assert_envelope(response, 400, "validation_error")
    for cursor in ("garbage!", forged(f"2025-01-31T12:00:00|{A_UUID}")):
        response = population.owner.client.get(
            f"/api/connections/{connection}/proxy/calls", params={"cursor": cursor}
        )
        assert_envelope(response, 400, "invalid_cursor")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_cursor_mutation_fails_the_server(population: Population, data: st.DataObject) -> None:
    client = population.owner.client
    first = page(client, {"limit": "2"})
    cursor = str(first.json()["links"]["next"]).split("cursor=")[1]
    candidate = data.draw(mutated(cursor))
    response = page(client, {"limit": "2", "cursor": candidate})
    assert_page_or_invalid_cursor(response, set(population.calls.values()))
