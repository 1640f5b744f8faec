"""``GET /api/me`` for every kind of credential and every way of presenting it."""

from __future__ import annotations

import httpx

from conftest import KeyholeServer

from .support import World, assert_envelope, basic, basic_sdk, bearer, sdk

NOT_A_USER = {"id", "email", "role"}


def me(client: httpx.Client, headers: dict[str, str]) -> dict[str, object]:
    response = client.get("/api/me", headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def organization_name(client: httpx.Client, key: str) -> str:
    name: str = client.get("/api/organization", headers=bearer(key)).json()["data"]["name"]
    return name


def test_a_user_key_names_the_user(cached_server: KeyholeServer, world: World, client: httpx.Client) -> None:
    identity = sdk(cached_server, world.child.member_key).identity.get().data
    assert identity is not None
    assert identity.id == world.child.member_id
    assert identity.email is not None and identity.email.startswith("member@")
    assert identity.role == "member"
    assert identity.organization_id == world.child.organization_id
    assert identity.organization_name == organization_name(client, world.child.member_key)
    assert (identity.is_user, identity.is_organization, identity.is_partner) == (True, False, False)
    assert identity.credential is not None and identity.credential.method == "bearer"

    admin = me(client, {"x-api-key": world.child.admin_key})
    assert (admin["id"], admin["role"], admin["credential"]) == (
        world.child.admin_id,
        "admin",
        {"method": "header"},
    )


def test_an_organization_key_names_its_organization(world: World, client: httpx.Client) -> None:
    for headers, method in (
        (bearer(world.child.org_key), "bearer"),
        (basic(world.child.organization_id, world.child.org_key), "basic"),
    ):
        identity = me(client, headers)
        assert not NOT_A_USER & set(identity), identity
        assert identity["organization_id"] == world.child.organization_id
        assert (identity["is_user"], identity["is_organization"], identity["is_partner"]) == (
            False,
            True,
            False,
        )
        assert identity["credential"] == {"method": method}


def test_a_partner_key_names_the_organization_it_acts_for(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    owner = me(client, bearer(world.owner.partner_api_key))
    assert not NOT_A_USER & set(owner), owner
    assert (owner["organization_id"], owner["is_partner"], owner["is_organization"]) == (
        world.owner.organization_id,
        True,
        False,
    )
    assert owner["organization_name"] == organization_name(client, world.owner.org_api_key)

    acting = (
        basic_sdk(cached_server, world.child.organization_id, world.owner.partner_api_key).identity.get().data
    )
    assert acting is not None
    assert (acting.organization_id, acting.organization_name, acting.is_partner) == (
        world.child.organization_id,
        organization_name(client, world.child.org_key),
        True,
    )
    assert acting.credential is not None and acting.credential.method == "basic"
    # The partner's users in the child are managed through that child: its listing is the child's.
    users = client.get(
        "/api/organization/users", headers=basic(world.child.organization_id, world.owner.partner_api_key)
    ).json()["data"]
    assert {world.child.admin_id, world.child.member_id} <= {user["id"] for user in users}


def test_a_partner_cannot_act_for_another_partners_organization(world: World, client: httpx.Client) -> None:
    response = client.get("/api/me", headers=basic(world.child.organization_id, world.rival.partner_api_key))
    assert_envelope(response, 401, "invalid_api_key")
    assert world.child.organization_id not in response.text


def test_no_or_a_wrong_key_is_unauthenticated(client: httpx.Client) -> None:
    assert_envelope(client.get("/api/me"), 401, "missing_credentials")
    assert_envelope(client.get("/api/me", headers=bearer("kh_u_nope")), 401, "invalid_api_key")
