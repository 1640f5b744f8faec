"""Accounts on a live server for the user, key and identity tests: a partner account with a child
organization holding an admin, a member and an organization key, and a rival partner account."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from polytomic import Polytomic

from conftest import KeyholeServer

ROLES = ["admin", "member"]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(organization_id: str, key: str) -> dict[str, str]:
    token = base64.b64encode(f"{organization_id}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def sdk(server: KeyholeServer, key: str) -> Polytomic:
    # No retries: a 409 or a 5xx must surface at once instead of being retried away.
    return Polytomic(base_url=server.url, token=key, max_retries=0)


def basic_sdk(server: KeyholeServer, organization_id: str, key: str) -> Polytomic:
    """The SDK has no Basic option: the header goes in as is, with no token (spec §3)."""
    return Polytomic(base_url=server.url, headers=basic(organization_id, key), max_retries=0)


@dataclass(frozen=True)
class Owner:
    """A partner account's owner organization, made with ``keyhole bootstrap --partner``."""

    organization_id: str
    user_id: str
    user_api_key: str
    org_api_key: str
    partner_api_key: str


@dataclass(frozen=True)
class Child:
    """An organization a partner created, with an admin, a member and an organization key."""

    organization_id: str
    admin_id: str
    admin_key: str
    member_id: str
    member_key: str
    org_key: str


@dataclass(frozen=True)
class World:
    owner: Owner
    child: Child
    sibling: Child  # another child of the same partner
    rival: Owner  # another partner account


def bootstrap_owner(server: KeyholeServer, name: str) -> Owner:
    result = server.cli("bootstrap", "--org", name, "--user", f"owner@{name}.test", "--partner")
    return Owner(**json.loads(result.stdout.strip().splitlines()[-1]))


def make_child(server: KeyholeServer, owner: Owner, name: str) -> Child:
    partner = sdk(server, owner.partner_api_key)
    organization_id = partner.organization.create(name=name).data.id
    assert organization_id is not None
    admin = partner.users.create(organization_id, email=f"admin@{name}.test", role="admin").data.id
    member = partner.users.create(organization_id, email=f"member@{name}.test").data.id
    assert admin is not None and member is not None
    admin_key = partner.users.create_api_key(organization_id, admin).data.value
    member_key = partner.users.create_api_key(organization_id, member).data.value
    assert admin_key is not None and member_key is not None
    minted = server.cli("keys", "create", "--organization", organization_id)
    org_key = json.loads(minted.stdout)["api_key"]
    return Child(organization_id, admin, admin_key, member, member_key, org_key)


def make_world(server: KeyholeServer) -> World:
    suffix = uuid.uuid4().hex[:8]
    owner = bootstrap_owner(server, f"owner-{suffix}")
    return World(
        owner=owner,
        child=make_child(server, owner, f"child-{suffix}"),
        sibling=make_child(server, owner, f"sibling-{suffix}"),
        rival=bootstrap_owner(server, f"rival-{suffix}"),
    )


def assert_envelope(response: httpx.Response, status: int, key: str | None = None) -> dict[str, Any]:
    """A Polytomic error: the status, and a JSON object ``{status, message, key, metadata}``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"status", "message", "key", "metadata"}, body
    assert body["status"] == status, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["metadata"], dict), body
    if key is not None:
        assert body["key"] == key, body
    return body


def users_of(client: httpx.Client, organization_id: str, key: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/organizations/{organization_id}/users", headers=bearer(key))
    assert response.status_code == 200, response.text
    users: list[dict[str, Any]] = response.json()["data"]
    return users


def keys_of(client: httpx.Client, organization_id: str, key: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/organizations/{organization_id}/keys", headers=bearer(key))
    assert response.status_code == 200, response.text
    keys: list[dict[str, Any]] = response.json()["data"]
    return keys


def works(client: httpx.Client, key: str) -> bool:
    """Whether the key authenticates (``/api/me`` answers any kind of key)."""
    status = client.get("/api/me", headers=bearer(key)).status_code
    assert status in (200, 401), status
    return status == 200
