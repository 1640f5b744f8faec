"""User keys minted over HTTP (shown once, ``force`` rotation), and an organization's keys listed
by prefix and revoked over HTTP and the CLI."""

from __future__ import annotations

import json
import uuid

import httpx

from conftest import KeyholeServer

from .support import UNKNOWN_ID, World, assert_envelope, bearer, keys_of, sdk, works


def new_user(server: KeyholeServer, world: World) -> str:
    partner = sdk(server, world.owner.partner_api_key)
    created = partner.users.create(world.child.organization_id, email=f"k-{uuid.uuid4().hex[:10]}@keys.test")
    assert created.data is not None and created.data.id is not None
    user_id: str = created.data.id
    return user_id


def mint(client: httpx.Client, world: World, user_id: str, *, force: str | None = None, key: str = "") -> str:
    response = client.post(
        f"/api/organizations/{world.child.organization_id}/users/{user_id}/keys",
        params={} if force is None else {"force": force},
        headers=bearer(key or world.owner.partner_api_key),
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["data"]["value"]
    return value


def test_a_minted_key_is_the_users_and_is_shown_only_once(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    user_id = new_user(cached_server, world)
    partner = sdk(cached_server, world.owner.partner_api_key)
    value = partner.users.create_api_key(world.child.organization_id, user_id).data.value
    assert value is not None and value.startswith("kh_u_")

    identity = sdk(cached_server, value).identity.get().data
    assert identity is not None
    assert (identity.id, identity.organization_id, identity.is_user) == (
        user_id,
        world.child.organization_id,
        True,
    )

    listing = client.get("/api/organization/keys", headers=bearer(world.child.admin_key))
    assert listing.status_code == 200, listing.text
    assert value not in listing.text
    mine = [entry for entry in listing.json()["data"] if entry["user_id"] == user_id]
    assert len(mine) == 1
    assert set(mine[0]) == {
        "id",
        "organization_id",
        "user_id",
        "kind",
        "prefix",
        "name",
        "created_at",
        "revoked_at",
    }
    assert (mine[0]["kind"], mine[0]["prefix"], mine[0]["revoked_at"]) == ("user", value[:12], None)


def test_force_revokes_the_users_other_keys_at_once(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    user_id = new_user(cached_server, world)
    bystander = new_user(cached_server, world)
    old = [mint(client, world, user_id), mint(client, world, user_id, force="false")]
    other = mint(client, world, bystander)
    assert all(works(client, key) for key in [*old, other])  # cached as working for an hour

    partner = sdk(cached_server, world.owner.partner_api_key)
    rotated = partner.users.create_api_key(world.child.organization_id, user_id, force=True).data.value
    assert rotated is not None
    assert not any(works(client, key) for key in old)
    assert works(client, rotated)
    assert works(client, other)

    listed = {
        entry["prefix"]: entry for entry in keys_of(client, world.child.organization_id, world.child.org_key)
    }
    assert all(listed[key[:12]]["revoked_at"] is not None for key in old)
    assert listed[rotated[:12]]["revoked_at"] is None
    assert listed[other[:12]]["revoked_at"] is None


def test_an_admin_revokes_a_key_over_http_and_it_stops_at_once(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    user_id = new_user(cached_server, world)
    first, second = mint(client, world, user_id), mint(client, world, user_id)
    assert works(client, first) and works(client, second)
    by_prefix = {
        entry["prefix"]: entry["id"]
        for entry in keys_of(client, world.child.organization_id, world.child.org_key)
    }

    revoked = client.delete(
        f"/api/organization/keys/{by_prefix[first[:12]]}", headers=bearer(world.child.admin_key)
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["data"]["revoked_at"] is not None
    assert not works(client, first)
    assert works(client, second)

    # A partner revokes through the managed organization's path; revoking twice changes nothing.
    path = f"/api/organizations/{world.child.organization_id}/keys/{by_prefix[second[:12]]}"
    once = client.delete(path, headers=bearer(world.owner.partner_api_key))
    twice = client.delete(path, headers=bearer(world.owner.partner_api_key))
    assert once.status_code == twice.status_code == 200, (once.text, twice.text)
    assert once.json()["data"]["revoked_at"] == twice.json()["data"]["revoked_at"] is not None
    assert not works(client, second)


def test_keys_of_other_organizations_are_not_found(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    sibling_key = keys_of(client, world.sibling.organization_id, world.sibling.admin_key)[0]
    attempts = [
        (f"/api/organization/keys/{sibling_key['id']}", world.child.admin_key),
        (
            f"/api/organizations/{world.child.organization_id}/keys/{sibling_key['id']}",
            world.owner.partner_api_key,
        ),
        (f"/api/organization/keys/{UNKNOWN_ID}", world.child.admin_key),
    ]
    for path, key in attempts:
        assert_envelope(client.delete(path, headers=bearer(key)), 404, "not_found")
    after = {
        entry["id"]: entry
        for entry in keys_of(client, world.sibling.organization_id, world.sibling.admin_key)
    }
    assert after[sibling_key["id"]]["revoked_at"] is None


def test_key_kinds_and_the_prefix_filter(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    owner = world.owner
    listed = keys_of(client, owner.organization_id, owner.partner_api_key)
    assert {entry["kind"] for entry in listed} == {"user", "organization", "partner"}

    def filtered(prefix: str) -> list[dict[str, str]]:
        response = client.get(
            f"/api/organizations/{owner.organization_id}/keys",
            params={"prefix": prefix},
            headers=bearer(owner.org_api_key),
        )
        assert response.status_code == 200, response.text
        entries: list[dict[str, str]] = response.json()["data"]
        return entries

    assert [entry["prefix"] for entry in filtered(owner.user_api_key[:12])] == [owner.user_api_key[:12]]
    assert {entry["kind"] for entry in filtered("kh_o_")} == {"organization"}
    assert {entry["kind"] for entry in filtered("kh_p")} == {"partner"}
    assert filtered("k_") == []  # '_' is matched as itself, not as a wildcard
    assert len(filtered("")) == len(listed)


def test_the_cli_lists_keys_by_prefix(cached_server: KeyholeServer, world: World) -> None:
    owner = world.owner
    prefix = owner.partner_api_key[:9]
    result = cached_server.cli("keys", "list", "--organization", owner.organization_id, "--prefix", prefix)
    listed = json.loads(result.stdout)
    assert [(entry["kind"], entry["prefix"]) for entry in listed] == [("partner", owner.partner_api_key[:12])]

    refused = cached_server.cli("keys", "list", "--prefix", owner.partner_api_key, check=False)
    assert refused.returncode != 0
    assert "prefix" in refused.stderr + refused.stdout
    assert owner.partner_api_key not in refused.stderr + refused.stdout
