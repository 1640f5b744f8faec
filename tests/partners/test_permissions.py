"""Every partner/admin endpoint, by every kind of credential: allowed, or refused with a 403 that
says which credential it needs, or a 404 that discloses nothing (another partner's objects)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conftest import KeyholeServer
from foundation.helpers import assert_envelope

from .support import Partner, bootstrap_partner

KINDS = ("member", "admin", "organization", "partner", "foreign_partner")
OK = "ok"
ADMIN = (403, "admin_required")
PARTNER_ONLY = (403, "partner_key_required")
NOT_PARTNER = (403, "partner_key_not_allowed")
HIDDEN = (404, "not_found")


@dataclass(frozen=True)
class World:
    """One partner account (owner O, child C, a member M of O, a connection X of O) and a rival."""

    headers: dict[str, dict[str, str]]
    owner: str
    child: str
    member: str
    connection: str


def _json(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture(scope="module")
def world(server: KeyholeServer, httpbin_url: str) -> Iterator[World]:
    partner: Partner = bootstrap_partner(server, "matrix-partner", "owner@matrix.test")
    rival: Partner = bootstrap_partner(server, "matrix-rival", "owner@rival.test")
    with httpx.Client(base_url=server.url, timeout=30) as api:
        child = _json(api.post("/api/organizations", json={"name": "matrix child"}, headers=partner.bearer))
        member = _json(
            api.post(
                "/api/organization/users",
                json={"email": "member@matrix.test", "role": "member"},
                headers=partner.keys.bearer,
            )
        )
        member_key = _json(
            api.post(
                f"/api/organizations/{partner.organization_id}/users/{member['id']}/keys",
                headers=partner.keys.bearer,
            )
        )["value"]
        connection = _json(
            api.post(
                "/api/connections",
                json={
                    "name": "matrix api",
                    "type": "api",
                    "configuration": {
                        "url": httpbin_url,
                        "auth": {"type": "bearer", "token": "matrix-SECRET"},
                    },
                },
                headers=partner.keys.bearer,
            )
        )
    yield World(
        headers={
            "member": {"Authorization": f"Bearer {member_key}"},
            "admin": partner.keys.bearer,
            "organization": partner.keys.basic,
            "partner": partner.bearer,
            "foreign_partner": rival.bearer,
        },
        owner=partner.organization_id,
        child=child["id"],
        member=member["id"],
        connection=connection["id"],
    )


Expectation = str | tuple[int, str]


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # formatted with the World's ids
    expected: dict[str, Expectation]  # by credential kind; OK means any 2xx
    body: dict[str, Any] | None = None


def _all(expectation: Expectation, **overrides: Expectation) -> dict[str, Expectation]:
    return {kind: overrides.get(kind, expectation) for kind in KINDS}


CASES = [
    Case("GET", "/api/me", _all(OK)),
    Case("GET", "/api/organization", _all(OK)),
    Case("GET", "/api/organizations", _all(PARTNER_ONLY, partner=OK, foreign_partner=OK)),
    Case("GET", "/api/organizations/{child}", _all(PARTNER_ONLY, partner=OK, foreign_partner=HIDDEN)),
    Case(
        "PUT",
        "/api/organizations/{child}",
        _all(PARTNER_ONLY, partner=OK, foreign_partner=HIDDEN),
        body={"name": "matrix child"},
    ),
    Case("DELETE", "/api/organizations/{child}", _all(PARTNER_ONLY, foreign_partner=HIDDEN, partner=OK)),
    Case("GET", "/api/organization/users", _all(OK)),
    Case("GET", "/api/organization/users/{member}", _all(OK, foreign_partner=HIDDEN)),
    Case(
        "PUT",
        "/api/organization/users/{member}",
        _all(OK, member=ADMIN, foreign_partner=HIDDEN),
        body={"role": "member"},
    ),
    Case("GET", "/api/organizations/{owner}/users", _all(OK, member=ADMIN, foreign_partner=HIDDEN)),
    Case("GET", "/api/organizations/{owner}/users/{member}", _all(OK, member=ADMIN, foreign_partner=HIDDEN)),
    Case(
        "PUT",
        "/api/organizations/{owner}/users/{member}",
        _all(OK, member=ADMIN, foreign_partner=HIDDEN),
        body={"email": "member@matrix.test", "role": "member"},
    ),
    Case("GET", "/api/organizations/{owner}/keys", _all(OK, member=ADMIN, foreign_partner=HIDDEN)),
    Case("GET", "/api/organization/keys", _all(OK, member=ADMIN)),
    Case("GET", "/api/proxy/calls", _all(OK, member=ADMIN, partner=NOT_PARTNER, foreign_partner=NOT_PARTNER)),
    Case(
        "GET",
        "/api/connections/{connection}/shared",
        _all(OK, partner=NOT_PARTNER, foreign_partner=NOT_PARTNER),
    ),
    Case(
        "GET",
        "/api/organizations/{owner}/connections/{connection}/shared",
        _all(PARTNER_ONLY, partner=OK, foreign_partner=HIDDEN),
    ),
    Case("GET", "/api/connections", _all(OK, partner=NOT_PARTNER, foreign_partner=NOT_PARTNER)),
    Case("GET", "/api/connections/{connection}", _all(OK, partner=NOT_PARTNER, foreign_partner=NOT_PARTNER)),
]

# Refusals are asserted for every kind; the allowed delete is left to the organization tests.
DESTRUCTIVE = {"DELETE"}


def _ids(case: Case) -> str:
    return f"{case.method} {case.path}"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_each_credential_kind_gets_what_it_may(world: World, api: httpx.Client, case: Case) -> None:
    path = case.path.format(
        owner=world.owner, child=world.child, member=world.member, connection=world.connection
    )
    # Refusals first: a refused call that wrongly wrote something shows in the allowed one's answer.
    for kind in sorted(KINDS, key=lambda kind: case.expected[kind] == OK):
        if case.method in DESTRUCTIVE and case.expected[kind] == OK:
            continue  # destructive: checked by its own test
        response = api.request(case.method, path, json=case.body, headers=world.headers[kind])
        expected = case.expected[kind]
        if isinstance(expected, str):
            assert 200 <= response.status_code < 300, (kind, response.text)
        else:
            status, key = expected
            body = assert_envelope(response, status, key)
            if status == 404:  # exactly what an id that never existed gets
                unknown = case.path.format(
                    owner=uuid.uuid4(), child=uuid.uuid4(), member=uuid.uuid4(), connection=uuid.uuid4()
                )
                missing = api.request(case.method, unknown, json=case.body, headers=world.headers[kind])
                absent = assert_envelope(missing, 404)
                assert (body["key"], body["message"]) == (absent["key"], absent["message"]), kind


def test_a_rival_partner_never_sees_this_account(world: World, api: httpx.Client) -> None:
    listed = api.get("/api/organizations", headers=world.headers["foreign_partner"]).json()["data"]
    assert {world.owner, world.child}.isdisjoint(item["id"] for item in listed)
