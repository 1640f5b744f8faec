"""Who may call each user, key and identity endpoint: a member, an admin, an organization key,
the partner that manages the organization, a rival partner and another organization's admin.
Refusals change nothing; 404s for organizations a caller may not manage look like unknown ones."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from .support import UNKNOWN_ID, World, assert_envelope, basic, bearer, keys_of, users_of

Headers = Callable[[World], dict[str, str]]

CREDENTIALS: dict[str, Headers] = {
    "member": lambda w: bearer(w.child.member_key),
    "admin": lambda w: bearer(w.child.admin_key),
    "organization key": lambda w: bearer(w.child.org_key),
    "partner": lambda w: bearer(w.owner.partner_api_key),
    "partner acting for the child": lambda w: basic(w.child.organization_id, w.owner.partner_api_key),
    "rival partner": lambda w: bearer(w.rival.partner_api_key),
    "sibling's admin": lambda w: bearer(w.sibling.admin_key),
}
MANAGERS = {"admin", "organization key", "partner", "partner acting for the child"}
OUTSIDERS = {"rival partner", "sibling's admin"}


@dataclass
class Target:
    """A user and a key of the child organization made for one case, so each case starts clean."""

    user_id: str
    key_id: str


def target(client: httpx.Client, world: World) -> Target:
    child = world.child.organization_id
    created = client.post(
        f"/api/organizations/{child}/users",
        json={"email": f"t-{uuid.uuid4().hex[:10]}@perm.test"},
        headers=bearer(world.owner.partner_api_key),
    )
    assert created.status_code == 200, created.text
    user_id = created.json()["data"]["id"]
    minted = client.post(
        f"/api/organizations/{child}/users/{user_id}/keys", headers=bearer(world.owner.partner_api_key)
    )
    assert minted.status_code == 200, minted.text
    key_id = minted.json()["data"]["id"]  # Keyhole adds the key's id, to revoke it by
    return Target(user_id, key_id)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # {org}, {user}, {key} filled in per case
    needs_admin: bool  # members may only read users
    body: dict[str, Any] | None = None


PATH_OPERATIONS = {
    "list users": Operation("GET", "/api/organizations/{org}/users", needs_admin=False),
    "get user": Operation("GET", "/api/organizations/{org}/users/{user}", needs_admin=False),
    "create user": Operation("POST", "/api/organizations/{org}/users", needs_admin=True, body={"email": "x"}),
    "update user": Operation(
        "PUT", "/api/organizations/{org}/users/{user}", needs_admin=True, body={"role": "admin"}
    ),
    "delete user": Operation("DELETE", "/api/organizations/{org}/users/{user}", needs_admin=True),
    "mint key": Operation("POST", "/api/organizations/{org}/users/{user}/keys", needs_admin=True),
    "list keys": Operation("GET", "/api/organizations/{org}/keys", needs_admin=True),
    "revoke key": Operation("DELETE", "/api/organizations/{org}/keys/{key}", needs_admin=True),
}
OWN_OPERATIONS = {
    "list users": Operation("GET", "/api/organization/users", needs_admin=False),
    "get user": Operation("GET", "/api/organization/users/{user}", needs_admin=False),
    "create user": Operation("POST", "/api/organization/users", needs_admin=True, body={"email": "x"}),
    "update user": Operation(
        "PUT", "/api/organization/users/{user}", needs_admin=True, body={"role": "admin"}
    ),
    "delete user": Operation("DELETE", "/api/organization/users/{user}", needs_admin=True),
    "list keys": Operation("GET", "/api/organization/keys", needs_admin=True),
    "revoke key": Operation("DELETE", "/api/organization/keys/{key}", needs_admin=True),
}


def call(
    client: httpx.Client, operation: Operation, headers: dict[str, str], org: str, found: Target
) -> httpx.Response:
    body = operation.body
    if body is not None and "email" in body:
        body = {"email": f"new-{uuid.uuid4().hex[:10]}@perm.test"}
    path = operation.path.format(org=org, user=found.user_id, key=found.key_id)
    return client.request(operation.method, path, json=body, headers=headers)


def snapshot(client: httpx.Client, world: World) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    child = world.child.organization_id
    return users_of(client, child, world.child.org_key), keys_of(client, child, world.child.org_key)


@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
@pytest.mark.parametrize("name", sorted(PATH_OPERATIONS))
def test_an_organization_named_in_the_path(
    world: World, client: httpx.Client, name: str, credential: str
) -> None:
    operation = PATH_OPERATIONS[name]
    found = target(client, world)
    before = snapshot(client, world)
    response = call(client, operation, CREDENTIALS[credential](world), world.child.organization_id, found)
    if credential in MANAGERS:
        assert response.status_code == 200, response.text
        return
    if credential == "member":
        assert_envelope(response, 403, "admin_required")
    else:
        assert_envelope(response, 404, "not_found")
    assert snapshot(client, world) == before


@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
@pytest.mark.parametrize("name", sorted(OWN_OPERATIONS))
def test_the_callers_own_organization(world: World, client: httpx.Client, name: str, credential: str) -> None:
    operation = OWN_OPERATIONS[name]
    found = target(client, world)
    before = snapshot(client, world)
    response = call(client, operation, CREDENTIALS[credential](world), "", found)
    # A partner key's own organization is its owner organization; an outsider's is its own.
    acts_for_child = credential not in OUTSIDERS | {"partner"}
    if credential == "member" and operation.needs_admin:
        assert_envelope(response, 403, "admin_required")
    elif acts_for_child:
        assert response.status_code == 200, response.text
        return
    elif "{" in operation.path:  # names a user or key of the child
        assert_envelope(response, 404, "not_found")
    else:  # listed or created in the caller's own organization, never the child's
        assert response.status_code == 200, response.text
        assert world.child.organization_id not in response.text
        assert found.user_id not in response.text
    assert snapshot(client, world) == before


@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
def test_every_credential_may_ask_who_it_is(world: World, client: httpx.Client, credential: str) -> None:
    response = client.get("/api/me", headers=CREDENTIALS[credential](world))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("credential", sorted(OUTSIDERS))
@pytest.mark.parametrize("name", sorted(PATH_OPERATIONS))
def test_a_refusal_looks_like_an_unknown_organization(
    world: World, client: httpx.Client, name: str, credential: str
) -> None:
    operation = PATH_OPERATIONS[name]
    headers = CREDENTIALS[credential](world)
    found = target(client, world)
    real = assert_envelope(call(client, operation, headers, world.child.organization_id, found), 404)
    unknown = assert_envelope(call(client, operation, headers, UNKNOWN_ID, found), 404)
    assert real["metadata"].pop("id") == world.child.organization_id
    assert unknown["metadata"].pop("id") == UNKNOWN_ID
    assert real == unknown


@pytest.mark.parametrize("name", ["get user", "update user", "delete user", "revoke key"])
def test_another_organizations_user_or_key_looks_unknown(
    world: World, client: httpx.Client, name: str
) -> None:
    operation = OWN_OPERATIONS[name]
    headers = bearer(world.sibling.admin_key)
    found = target(client, world)
    real = assert_envelope(call(client, operation, headers, "", found), 404, "not_found")
    unknown = assert_envelope(call(client, operation, headers, "", Target(UNKNOWN_ID, UNKNOWN_ID)), 404)
    assert real["metadata"].pop("id") in (found.user_id, found.key_id)
    assert unknown["metadata"].pop("id") == UNKNOWN_ID
    assert real == unknown
