"""Bad input to the shared-connection endpoints: a clear 4xx in the Polytomic envelope, and
nothing written."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import httpx
import pytest

from conftest import KeyholeServer
from foundation.helpers import assert_envelope

from .support import PartnerAccount, create_connection, data_of, share_path

UNKNOWN = str(uuid.UUID(int=7))


@pytest.fixture(scope="module")
def parent(http: httpx.Client, account: PartnerAccount, httpbin_url: str) -> str:
    return create_connection(http, account.owner.bearer, "api", {"url": httpbin_url})


def _copies(server: KeyholeServer, parent: str) -> int:
    with sqlite3.connect(server.home / "keyhole.db") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM connections WHERE parent_connection_id = ?", (parent,)
        ).fetchone()
    return int(count)


def _bodies(child: str) -> list[tuple[str, Any]]:
    """(name, body) of every malformed share request; ``bytes`` bodies are sent as they are."""
    return [
        ("not JSON", b'{"child_organization_id": '),
        ("empty", b""),
        ("array", [child]),
        ("string", child),
        ("null", None),
        ("missing child", {"name": "copy"}),
        ("child as number", {"child_organization_id": 12}),
        ("child as null", {"child_organization_id": None}),
        ("child as list", {"child_organization_id": [child]}),
        ("child not a uuid", {"child_organization_id": "child-a"}),
        ("child empty", {"child_organization_id": ""}),
        ("child padded", {"child_organization_id": f" {child}"}),
        ("name as number", {"child_organization_id": child, "name": 5}),
        ("name empty", {"child_organization_id": child, "name": ""}),
        ("name too long", {"child_organization_id": child, "name": "n" * 201}),
        ("name with control", {"child_organization_id": child, "name": "a\nb"}),
        ("unknown field", {"child_organization_id": child, "configuration": {"url": "http://evil.example"}}),
    ]


def test_malformed_share_requests_are_refused_and_write_nothing(
    sharing_server: KeyholeServer, http: httpx.Client, account: PartnerAccount, parent: str
) -> None:
    path = share_path(account.owner.organization_id, parent)
    for name, body in _bodies(account.child_a.organization_id):
        if isinstance(body, bytes):
            headers = {**account.partner, "content-type": "application/json"}
            response = http.post(path, content=body, headers=headers)
        else:
            response = http.post(path, json=body, headers=account.partner)
        error = assert_envelope(response, 400)
        assert error["key"] in {"malformed_json", "invalid_body", "validation_error"}, (name, error)
    oversized = http.post(
        path,
        json={"child_organization_id": account.child_a.organization_id, "name": "n" * 2_000_000},
        headers=account.partner,
    )
    assert_envelope(oversized, 413)
    assert _copies(sharing_server, parent) == 0
    assert data_of(http.get(path, headers=account.partner)) == []
    assert data_of(http.get("/api/connections", headers=account.child_a.bearer)) == []


def test_field_errors_name_the_field(http: httpx.Client, account: PartnerAccount, parent: str) -> None:
    path = share_path(account.owner.organization_id, parent)
    response = http.post(path, json={"child_organization_id": "nope"}, headers=account.partner)
    error = assert_envelope(response, 400, "validation_error")
    assert [item["field"] for item in error["metadata"]["errors"]] == ["child_organization_id"]


def test_ids_that_name_nothing_are_not_found(
    sharing_server: KeyholeServer, http: httpx.Client, account: PartnerAccount, parent: str
) -> None:
    owner = account.owner.organization_id
    child = {"child_organization_id": account.child_a.organization_id}
    paths = [
        share_path("not-a-uuid", parent),
        share_path(owner, "not-a-uuid"),
        share_path(UNKNOWN, parent),
        share_path(owner, UNKNOWN),
        share_path(owner, "x" * 5000),
    ]
    for path in paths:
        assert_envelope(http.get(path, headers=account.partner), 404, "not_found")
        assert_envelope(http.post(path, json=child, headers=account.partner), 404, "not_found")
    unknown_child = http.post(
        share_path(owner, parent), json={"child_organization_id": UNKNOWN}, headers=account.partner
    )
    assert_envelope(unknown_child, 404, "not_found")
    for connection in ("not-a-uuid", UNKNOWN):
        listing = http.get(f"/api/connections/{connection}/shared", headers=account.owner.bearer)
        assert_envelope(listing, 404, "not_found")
    assert _copies(sharing_server, parent) == 0


def test_credentials_are_checked_first(http: httpx.Client, account: PartnerAccount, parent: str) -> None:
    path = share_path(account.owner.organization_id, parent)
    child = {"child_organization_id": account.child_a.organization_id}
    assert_envelope(http.post(path, json=child), 401)
    assert_envelope(http.get(path, headers={"Authorization": "Bearer kh_p_not-a-key"}), 401)
    assert_envelope(http.get(f"/api/connections/{parent}/shared"), 401)
    # A malformed body from a key that may not share is refused for the key, not the body.
    assert_envelope(
        http.post(path, content=b"{", headers=account.child_a.bearer), 403, "partner_key_required"
    )
