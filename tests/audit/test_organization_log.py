"""GET /api/proxy/calls: every call of the caller's organization, newest first, each filter
alone and combined, and nothing of another organization."""

from __future__ import annotations

import uuid
from datetime import timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import Population
from .support import CONNECTION_FIELDS, model, moment, page, position, records, walk

UNKNOWN = str(uuid.uuid4())
PLUS_0530 = timezone(timedelta(hours=5, minutes=30))


def test_lists_every_call_of_the_organization_newest_first(population: Population) -> None:
    listed = population.listed
    assert sorted(record["proxyCallId"] for record in listed) == sorted(population.calls.values())
    positions = [position(record) for record in listed]
    assert positions == sorted(positions, reverse=True) and len(set(positions)) == len(positions)
    through = {record["proxyCallId"]: record["connectionId"] for record in listed}
    for label, call_id in population.calls.items():
        assert through[call_id] == population.connections[label.split("_")[0]]
    assert all(record["parentConnectionId"] is None for record in listed)  # no shared copies here
    assert all(record["principalId"] == population.owner.keys.user_id for record in listed)


def test_records_have_the_shape_of_the_connection_listing(population: Population) -> None:
    """The same record as the connection's own listing shows, and which connections it went through."""
    for connection in population.connections.values():
        one_connection = population.owner.gw.calls(connection, limit=200)["data"]
        organization_wide = records(population.owner.client, {"connection_id": connection})
        assert organization_wide and len(organization_wide) == len(one_connection)
        for wide, narrow in zip(organization_wide, one_connection, strict=True):
            assert set(wide) - set(narrow) <= CONNECTION_FIELDS <= set(wide)
            assert {name: wide[name] for name in narrow} == narrow
            assert wide["connectionId"] == connection


def test_each_record_says_what_happened(population: Population) -> None:
    by_id = {record["proxyCallId"]: record for record in population.listed}
    by_label = {label: by_id[call_id] for label, call_id in population.calls.items()}
    expected = {
        "a_ok": ("GET", "/get", 200, "ok"),
        "a_404": ("GET", "/status/404", 404, "ok"),
        "a_503": ("DELETE", "/status/503", 503, "ok"),
        "a_locked": ("GET", "/get", None, "locked_header"),
        "b_created": ("POST", "/status/201", 201, "ok"),
        "b_redirect": ("GET", "/status/302", 302, "ok"),
        "b_invalid": ("GET", "/../get", None, "invalid_proxy_request"),
        "slow_timeout": ("GET", "/delay/2", None, "upstream_timeout"),
    }
    for label, (method, path, status, outcome) in expected.items():
        record = by_label[label]
        assert (record["method"], record["path"], record["status"], record["outcome"]) == (
            method,
            path,
            status,
            outcome,
        ), label
        assert (record["error"] is None) == (outcome == "ok"), record
        assert record["dialect"] == "polytomic" and record["createdAt"].endswith("Z")


FILTERED = {
    "connection a": ({"connection_id": "a"}, {"a_ok", "a_404", "a_503", "a_locked"}),
    "connection b": ({"connection_id": "b"}, {"b_created", "b_redirect", "b_invalid"}),
    "outcome ok": ({"outcome": "ok"}, {"a_ok", "a_404", "a_503", "b_created", "b_redirect"}),
    "outcome locked_header": ({"outcome": "locked_header"}, {"a_locked"}),
    "outcome upstream_timeout": ({"outcome": "upstream_timeout"}, {"slow_timeout"}),
    "an outcome nobody had": ({"outcome": "no_such_outcome"}, set()),
    "errors only": ({"ok": "false"}, {"a_locked", "b_invalid", "slow_timeout"}),
    "no errors": ({"ok": "TRUE"}, {"a_ok", "a_404", "a_503", "b_created", "b_redirect"}),
    "2xx": ({"status_class": "2xx"}, {"a_ok", "b_created"}),
    "3xx": ({"status_class": "3xx"}, {"b_redirect"}),
    "4xx": ({"status_class": "4xx"}, {"a_404"}),
    "5xx": ({"status_class": "5xx"}, {"a_503"}),
    "2XX": ({"status_class": "2XX"}, {"a_ok", "b_created"}),
    "no upstream answer": ({"status_class": "none"}, {"a_locked", "b_invalid", "slow_timeout"}),
    "a, no upstream answer": ({"connection_id": "a", "status_class": "none"}, {"a_locked"}),
    "b, ok, 2xx": ({"connection_id": "b", "ok": "true", "status_class": "2xx"}, {"b_created"}),
    "a, 5xx, errors only": ({"connection_id": "a", "status_class": "5xx", "ok": "false"}, set()),
    "an unknown connection": ({"connection_id": UNKNOWN}, set()),
}


@pytest.mark.parametrize(("params", "expected"), FILTERED.values(), ids=FILTERED.keys())
def test_filters(population: Population, params: dict[str, str], expected: set[str]) -> None:
    params = {name: population.connections.get(value, value) for name, value in params.items()}
    listed = records(population.owner.client, params)
    ids = [record["proxyCallId"] for record in listed]
    assert population.labels(ids) == expected
    assert listed == [record for record in population.listed if record["proxyCallId"] in ids]


def test_time_range_is_inclusive_and_takes_any_offset(population: Population) -> None:
    listed, client = population.listed, population.owner.client
    middle = listed[len(listed) // 2]
    at = middle["createdAt"]
    same_moment = moment(middle).astimezone(PLUS_0530).isoformat()
    assert records(client, {"since": at}) == listed[: len(listed) // 2 + 1]
    assert records(client, {"until": at}) == listed[len(listed) // 2 :]
    assert records(client, {"since": at, "until": at}) == [middle]
    assert records(client, {"since": same_moment, "until": same_moment}) == [middle]
    after_everything = (moment(listed[0]) + timedelta(microseconds=1)).isoformat()
    assert records(client, {"since": after_everything}) == []
    assert records(client, {"until": after_everything}) == listed


@st.composite
def filter_params(draw: st.DrawFn, population: Population) -> dict[str, str]:
    times = [r["createdAt"] for r in population.listed]
    times += [moment(r).astimezone(PLUS_0530).isoformat() for r in population.listed]
    times += [(moment(r) - timedelta(microseconds=1)).isoformat() for r in population.listed]
    choices: dict[str, st.SearchStrategy[str]] = {
        "connection_id": st.sampled_from([*population.connections.values(), population.neighbour_connection]),
        "outcome": st.sampled_from(["ok", "locked_header", "invalid_proxy_request", "upstream_timeout"]),
        "ok": st.sampled_from(["true", "false"]),
        "status_class": st.sampled_from(["2xx", "3xx", "4xx", "5xx", "none"]),
        "since": st.sampled_from(times),
        "until": st.sampled_from(times),
        "limit": st.sampled_from(["1", "2", "3", "1000"]),
    }
    names = draw(st.sets(st.sampled_from(sorted(choices)), min_size=1))
    return {name: draw(choices[name]) for name in sorted(names)}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_filters_combine_as_and(population: Population, data: st.DataObject) -> None:
    params = data.draw(filter_params(population))
    since, until = params.get("since"), params.get("until")
    if since and until and moment({"createdAt": since}) > moment({"createdAt": until}):
        response = page(population.owner.client, params)
        assert response.status_code == 400 and response.json()["metadata"]["errors"][0]["field"] == "since"
        return
    pages = walk(population.owner.client, params)
    limit = int(params.get("limit", "100"))
    assert all(len(one_page) == limit for one_page in pages[:-1]) and len(pages[-1]) <= limit
    selected = model(params)
    assert [r for one_page in pages for r in one_page] == [r for r in population.listed if selected(r)]


def test_other_organizations_calls_never_appear(population: Population) -> None:
    owner, neighbour = population.owner, population.neighbour
    assert records(owner.client, {"connection_id": population.neighbour_connection}) == []
    for params in ({}, {"status_class": "4xx"}, {"outcome": "ok"}):
        listed: list[dict[str, Any]] = records(neighbour.client, params)
        assert {r["proxyCallId"] for r in listed} <= set(population.neighbour_calls)
        assert not {r["proxyCallId"] for r in records(owner.client, params)} & set(population.neighbour_calls)
    assert sorted(r["proxyCallId"] for r in records(neighbour.client)) == sorted(population.neighbour_calls)
    for connection in population.connections.values():
        assert records(neighbour.client, {"connection_id": connection}) == []


def test_next_link_keeps_the_filters(population: Population) -> None:
    params = {"connection_id": population.connections["a"], "ok": "true", "limit": "1"}
    response = page(population.owner.client, params)
    assert response.status_code == 200, response.text
    next_link = response.json()["links"]["next"]
    assert next_link is not None
    for name, value in params.items():
        assert f"{name}={value}" in next_link
    pages = walk(population.owner.client, params)
    assert [len(one_page) for one_page in pages] == [1, 1, 1]
    assert population.labels([r["proxyCallId"] for one_page in pages for r in one_page]) == {
        "a_ok",
        "a_404",
        "a_503",
    }
    whole = page(population.owner.client, {"limit": str(len(population.listed))}).json()
    assert whole["links"]["next"] is None and whole["data"] == population.listed


def test_a_connection_id_in_capitals_is_the_same_connection(population: Population) -> None:
    connection = population.connections["a"]
    client = population.owner.client
    assert records(client, {"connection_id": connection.upper()}) == records(
        client, {"connection_id": connection}
    )
