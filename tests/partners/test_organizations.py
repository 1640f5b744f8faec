"""A partner account's organizations over HTTP, with the official SDK: ownership, unique names,
write-only SSO secrets, deletion of everything an organization holds, and bad input."""

from __future__ import annotations

import base64
import sqlite3
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polytomic.errors import ConflictError, ForbiddenError, NotFoundError

from conftest import KeyholeServer
from foundation.helpers import assert_envelope

from .support import Partner, organization_names, sdk

SSO_SECRET = "sso-client-SECRET-4711"


def _rows(server: KeyholeServer, sql: str, *params: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.home / "keyhole.db") as db:
        return db.execute(sql, params).fetchall()


def test_partner_creates_lists_updates_and_deletes_organizations(
    server: KeyholeServer, partner: Partner, api: httpx.Client
) -> None:
    client = sdk(server, partner.partner_api_key)
    created = client.organization.create(
        name="Acme Child", sso_domain="acme.test", issuer="https://idp.acme.test", client_secret=SSO_SECRET
    ).data
    assert created is not None and created.id
    assert (created.name, created.sso_domain, created.issuer) == (
        "Acme Child",
        "acme.test",
        "https://idp.acme.test",
    )
    raw = api.get(f"/api/organizations/{created.id}", headers=partner.bearer)
    assert SSO_SECRET not in raw.text and raw.json()["data"]["client_secret_set"] is True
    stored = _rows(server, "SELECT sso_client_secret FROM organizations WHERE id = ?", created.id)
    assert stored[0][0] and SSO_SECRET not in stored[0][0]  # encrypted at rest

    listed = client.organization.list().data or []
    assert listed[0].id == partner.organization_id  # the owner first
    assert created.id in [item.id for item in listed]

    # SSO settings are replaced in full: what the update leaves out is cleared.
    updated = client.organization.update(created.id, name="Acme Renamed", sso_org_id="org_123").data
    assert updated is not None
    assert (updated.name, updated.sso_org_id, updated.sso_domain, updated.issuer) == (
        "Acme Renamed",
        "org_123",
        None,
        None,
    )
    assert (
        api.get(f"/api/organizations/{created.id}", headers=partner.bearer).json()["data"][
            "client_secret_set"
        ]
        is False
    )

    client.organization.delete(created.id)
    with pytest.raises(NotFoundError):
        client.organization.get(created.id)
    assert "Acme Renamed" not in organization_names(api, partner)


def test_names_are_unique_within_a_partner_account_only(
    server: KeyholeServer, partner: Partner, other_partner: Partner
) -> None:
    mine, theirs = sdk(server, partner.partner_api_key), sdk(server, other_partner.partner_api_key)
    first = mine.organization.create(name="Shared Name").data
    theirs.organization.create(name="Shared Name")  # another partner's namespace
    with pytest.raises(ConflictError) as taken:
        mine.organization.create(name="Shared Name")
    assert taken.value.body.key == "organization_name_taken"
    owner_name = mine.organization.get_current().data
    assert owner_name is not None and owner_name.name
    with pytest.raises(ConflictError):
        mine.organization.create(name=owner_name.name)  # the owner's name is taken too
    second = mine.organization.create(name="Second").data
    assert first is not None and second is not None
    with pytest.raises(ConflictError):
        mine.organization.update(second.id, name="Shared Name")
    mine.organization.update(first.id, name="Shared Name")  # keeping its own name is fine


def test_another_partners_organizations_are_not_found(
    server: KeyholeServer, partner: Partner, other_partner: Partner, api: httpx.Client
) -> None:
    child = sdk(server, partner.partner_api_key).organization.create(name="Private").data
    assert child is not None
    unknown = str(uuid.uuid4())
    for method, body in (("GET", None), ("PUT", {"name": "Hijacked"}), ("DELETE", None)):
        foreign = api.request(
            method, f"/api/organizations/{child.id}", json=body, headers=other_partner.bearer
        )
        missing = api.request(
            method, f"/api/organizations/{unknown}", json=body, headers=other_partner.bearer
        )
        seen, absent = assert_envelope(foreign, 404), assert_envelope(missing, 404)
        assert (seen["key"], seen["message"]) == (absent["key"], absent["message"])
    assert "Private" in organization_names(api, partner)
    assert "Private" not in organization_names(api, other_partner)


def test_a_partner_cannot_delete_its_owner_organization(server: KeyholeServer, partner: Partner) -> None:
    with pytest.raises(ForbiddenError) as refused:
        sdk(server, partner.partner_api_key).organization.delete(partner.organization_id)
    assert refused.value.body.key == "owner_organization"


def test_deleting_an_organization_deletes_its_keys_connections_and_stored_bodies(
    server: KeyholeServer, partner: Partner, api: httpx.Client, httpbin_url: str
) -> None:
    child = sdk(server, partner.partner_api_key).organization.create(name="Doomed").data
    assert child is not None
    minted = server.cli("keys", "create", "--organization", child.id)
    org_key = httpx.Response(200, content=minted.stdout.strip().splitlines()[-1]).json()["api_key"]
    headers = {"Authorization": "Basic " + base64.b64encode(f"{child.id}:{org_key}".encode()).decode()}
    created = api.post(
        "/api/connections",
        headers=headers,
        json={
            "name": "doomed api",
            "type": "api",
            "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": "doomed-SECRET"}},
        },
    )
    assert created.status_code == 200, created.text
    connection_id = created.json()["data"]["id"]
    # A stored body: an async call's answer lands in the blob store, outside the database.
    submitted = api.post(
        f"/api/connections/{connection_id}/proxy",
        headers=headers,
        json={"request": {"method": "GET", "path": "/bytes/2048"}, "async": True},
    )
    assert submitted.status_code == 200, submitted.text
    job_url = submitted.json()["data"]["jobUrl"]
    deadline = time.monotonic() + 30
    while api.get(job_url, headers=headers).json()["data"]["status"] != "done":
        assert time.monotonic() < deadline, "the async call did not finish"
        time.sleep(0.1)
    stored = [path for path in (server.home / "blobs").rglob("*") if path.is_file() and child.id in str(path)]
    assert stored, "the async call's body is not in the blob store"

    assert api.delete(f"/api/organizations/{child.id}", headers=partner.bearer).status_code == 204
    assert_envelope(api.get("/api/connections", headers=headers), 401)  # at once, not after a TTL
    for table, column in (("connections", "organization_id"), ("api_keys", "organization_id")):
        assert _rows(server, f"SELECT id FROM {table} WHERE {column} = ?", child.id) == []
    assert _rows(server, "SELECT id FROM connections WHERE id = ?", connection_id) == []
    assert _rows(server, "SELECT id FROM blobs WHERE organization_id = ?", child.id) == []
    assert not [path for path in stored if path.exists()], "stored bodies outlived their organization"


def test_every_key_reads_its_own_organization(
    server: KeyholeServer, partner: Partner, api: httpx.Client
) -> None:
    for headers in (partner.keys.bearer, partner.keys.basic, partner.bearer):
        response = api.get("/api/organization", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["id"] == partner.organization_id
    child = sdk(server, partner.partner_api_key).organization.create(name="Acted For").data
    assert child is not None
    acting = base64.b64encode(f"{child.id}:{partner.partner_api_key}".encode()).decode()
    response = api.get("/api/organization", headers={"Authorization": f"Basic {acting}"})
    assert response.status_code == 200 and response.json()["data"]["id"] == child.id


def test_organization_endpoints_need_a_partner_key(partner: Partner, api: httpx.Client) -> None:
    for headers in (partner.keys.bearer, partner.keys.basic):
        for method, path in (
            ("GET", "/api/organizations"),
            ("POST", "/api/organizations"),
            ("GET", f"/api/organizations/{partner.organization_id}"),
            ("PUT", f"/api/organizations/{partner.organization_id}"),
            ("DELETE", f"/api/organizations/{partner.organization_id}"),
        ):
            body = {"name": "x"} if method in ("POST", "PUT") else None
            assert_envelope(
                api.request(method, path, json=body, headers=headers), 403, "partner_key_required"
            )


BAD_BODIES: list[tuple[str, Any]] = [
    ("not json", b"{nope"),
    ("array", b"[]"),
    ("no name", b"{}"),
    ("empty name", b'{"name": ""}'),
    ("name too long", b'{"name": "' + b"n" * 201 + b'"}'),
    ("name with NUL", b'{"name": "a\\u0000b"}'),
    ("name with newline", b'{"name": "a\\nb"}'),
    ("name a number", b'{"name": 5}'),
    ("unknown field", b'{"name": "ok", "owner": "me"}'),
    ("issuer a list", b'{"name": "ok", "issuer": ["x"]}'),
    ("secret an object", b'{"name": "ok", "client_secret": {"a": 1}}'),
    ("oversized", b'{"name": "ok", "client_secret": "' + b"s" * 2_000_000 + b'"}'),
]


@pytest.mark.parametrize(("case", "body"), BAD_BODIES, ids=[case for case, _ in BAD_BODIES])
def test_bad_organization_bodies_are_refused_without_writing(
    partner: Partner, api: httpx.Client, case: str, body: bytes
) -> None:
    before = organization_names(api, partner)
    headers = {**partner.bearer, "content-type": "application/json"}
    assert_envelope(api.post("/api/organizations", content=body, headers=headers))
    assert_envelope(api.put(f"/api/organizations/{partner.organization_id}", content=body, headers=headers))
    assert organization_names(api, partner) == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(organization_id=st.text(min_size=1, max_size=80).filter(lambda text: text.strip(".") != ""))
def test_any_organization_id_spelling_is_a_clean_404(
    partner: Partner, api: httpx.Client, organization_id: str
) -> None:
    response = api.get(f"/api/organizations/{quote(organization_id, safe='')}", headers=partner.bearer)
    assert_envelope(response, 404)
