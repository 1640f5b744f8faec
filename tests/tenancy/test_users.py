"""Users over HTTP with the official SDK: the caller's own organization and one it manages."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polytomic.core.api_error import ApiError
from polytomic.errors import ForbiddenError, NotFoundError, UnprocessableEntityError

from conftest import KeyholeServer

from .support import ROLES, World, assert_envelope, bearer, sdk, users_of, works

LIVE = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def fresh_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.test"


def test_a_partner_manages_a_childs_users(cached_server: KeyholeServer, world: World) -> None:
    partner = sdk(cached_server, world.owner.partner_api_key)
    child = world.child.organization_id
    created = partner.users.create(child, email="  New.Person@Example.TEST ", role_ids=["admin"]).data
    assert created is not None and created.id is not None
    assert created.email == "new.person@example.test"
    assert created.organization_id == child
    assert (created.role, created.role_ids) == ("admin", ["admin"])

    fetched = partner.users.get(child, created.id).data
    assert fetched == created
    assert created.id in {user.id for user in partner.users.list(child).data or []}

    # Only the role changes: the email the SDK must send is checked, not applied.
    updated = partner.users.update(child, created.id, email="someone.else@example.test", role="member").data
    assert updated is not None
    assert (updated.email, updated.role, updated.role_ids) == (
        "new.person@example.test",
        "member",
        ["member"],
    )
    assert partner.users.get(child, created.id).data == updated

    deleted = partner.users.delete(child, created.id).data
    assert deleted is not None and deleted.id == created.id
    with pytest.raises(NotFoundError):
        partner.users.get(child, created.id)
    assert created.id not in {user.id for user in partner.users.list(child).data or []}


def test_an_admin_manages_its_own_organizations_users(cached_server: KeyholeServer, world: World) -> None:
    admin = sdk(cached_server, world.child.admin_key)
    listed = admin.users.list_current_org_users().data or []
    by_id = {user.id: user for user in listed}
    assert {world.child.admin_id, world.child.member_id} <= set(by_id)
    member = by_id[world.child.member_id]
    assert (member.role, member.role_ids, member.harbor_ids, member.harbor_only) == (
        "member",
        ["member"],
        [],
        False,
    )

    email = fresh_email()
    created = admin.users.create_current_org_user(email=email).data
    assert created is not None and created.id is not None
    assert (created.email, created.role, created.organization_id) == (
        email,
        "member",
        world.child.organization_id,
    )
    current = admin.users.get_current_org_user(created.id).data
    assert current is not None and (current.email, current.harbor_ids) == (email, [])

    promoted = admin.users.update_current_org_user(created.id, role_ids=["admin"]).data
    assert promoted is not None and promoted.role == "admin"
    unchanged = admin.users.update_current_org_user(created.id).data
    assert unchanged is not None and unchanged.role == "admin"

    admin.users.delete_current_org_user(created.id)
    with pytest.raises(NotFoundError):
        admin.users.get_current_org_user(created.id)


def test_an_organization_key_manages_its_organizations_users(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    org = sdk(cached_server, world.child.org_key)
    created = org.users.create(world.child.organization_id, email=fresh_email(), role="admin").data
    assert created is not None and created.id is not None and created.role == "admin"
    org.users.delete_current_org_user(created.id)
    assert created.id not in {
        u["id"] for u in users_of(client, world.child.organization_id, world.child.org_key)
    }


def test_a_member_reads_users_but_changes_none(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    member = sdk(cached_server, world.child.member_key)
    before = users_of(client, world.child.organization_id, world.child.admin_key)
    assert {user.id for user in member.users.list_current_org_users().data or []} == {u["id"] for u in before}
    assert member.users.get_current_org_user(world.child.admin_id).data is not None

    attempts: list[Callable[[], object]] = [
        lambda: member.users.create_current_org_user(email=fresh_email()),
        lambda: member.users.update_current_org_user(world.child.member_id, role="admin"),
        lambda: member.users.delete_current_org_user(world.child.admin_id),
        lambda: member.users.list(world.child.organization_id),
        lambda: member.users.create(world.child.organization_id, email=fresh_email()),
        lambda: member.users.create_api_key(world.child.organization_id, world.child.member_id),
    ]
    for attempt in attempts:
        with pytest.raises(ForbiddenError) as refused:
            attempt()
        assert refused.value.body.key == "admin_required"
    assert users_of(client, world.child.organization_id, world.child.admin_key) == before


def test_email_is_unique_per_organization_in_any_spelling(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    partner = sdk(cached_server, world.owner.partner_api_key)
    email = fresh_email("dup")
    partner.users.create(world.child.organization_id, email=email)
    before = users_of(client, world.child.organization_id, world.child.admin_key)
    with pytest.raises(ApiError) as taken:
        partner.users.create(world.child.organization_id, email=f"  {email.upper()}\t")
    assert taken.value.status_code == 409
    assert taken.value.body["key"] == "user_email_taken"
    assert users_of(client, world.child.organization_id, world.child.admin_key) == before
    # Another organization may have a user with the same email.
    elsewhere = partner.users.create(world.sibling.organization_id, email=email).data
    assert elsewhere is not None and elsewhere.email == email


def test_role_and_role_ids_together_are_refused(cached_server: KeyholeServer, world: World) -> None:
    partner = sdk(cached_server, world.owner.partner_api_key)
    with pytest.raises(UnprocessableEntityError) as refused:
        partner.users.create(
            world.child.organization_id, email=fresh_email(), role="admin", role_ids=["admin"]
        )
    assert refused.value.body.key == "role_conflict"
    for role_ids in ([], ["admin", "member"]):
        with pytest.raises(UnprocessableEntityError) as refused:
            partner.users.create(world.child.organization_id, email=fresh_email(), role_ids=role_ids)
        assert refused.value.body.key == "invalid_role"
        assert refused.value.body.metadata == {"roles": ROLES}


def test_a_role_change_takes_effect_at_once(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    partner = sdk(cached_server, world.owner.partner_api_key)
    child = world.child.organization_id
    user = partner.users.create(child, email=fresh_email()).data
    assert user is not None and user.id is not None
    key = partner.users.create_api_key(child, user.id).data.value
    assert key is not None

    def create_as_user() -> int:
        return client.post(
            "/api/organization/users", json={"email": fresh_email()}, headers=bearer(key)
        ).status_code

    assert create_as_user() == 403  # the member's principal is now cached (for an hour on this server)
    partner.users.update(child, user.id, email=user.email or "", role="admin")
    assert create_as_user() == 200
    partner.users.update(child, user.id, email=user.email or "", role_ids=["member"])
    assert create_as_user() == 403


def test_deleting_a_user_deletes_its_keys_at_once(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    partner = sdk(cached_server, world.owner.partner_api_key)
    child = world.child.organization_id
    user = partner.users.create(child, email=fresh_email()).data
    assert user is not None and user.id is not None
    keys = [partner.users.create_api_key(child, user.id).data.value for _ in range(2)]
    assert all(key is not None and works(client, key) for key in keys)  # cached as working

    admin = sdk(cached_server, world.child.admin_key)
    admin.users.delete_current_org_user(user.id)
    assert not any(works(client, key) for key in keys if key is not None)
    listing = client.get("/api/organization/keys", headers=bearer(world.child.admin_key)).json()["data"]
    assert user.id not in {entry["user_id"] for entry in listing}


def test_a_key_cannot_delete_its_own_user(
    cached_server: KeyholeServer, world: World, client: httpx.Client
) -> None:
    partner = sdk(cached_server, world.owner.partner_api_key)
    child = world.child.organization_id
    user = partner.users.create(child, email=fresh_email(), role="admin").data
    assert user is not None and user.id is not None
    key = partner.users.create_api_key(child, user.id).data.value
    assert key is not None
    for path in (f"/api/organization/users/{user.id}", f"/api/organizations/{child}/users/{user.id}"):
        assert_envelope(client.delete(path, headers=bearer(key)), 409, "cannot_delete_self")
    assert works(client, key)
    assert user.id in {u["id"] for u in users_of(client, child, world.child.admin_key)}


# -- spellings -------------------------------------------------------------------------------------

_LOCAL = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+_-", min_size=1, max_size=40
)
_DOMAIN = st.from_regex(r"[A-Za-z0-9]{1,20}\.[A-Za-z]{2,10}", fullmatch=True)
_PADDING = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=3)


@LIVE
@given(
    local=_LOCAL,
    domain=_DOMAIN,
    padding=st.tuples(_PADDING, _PADDING),
    variant=st.sampled_from(["upper", "swap"]),
)
def test_emails_are_stored_trimmed_and_lower_case(
    client: httpx.Client, world: World, local: str, domain: str, padding: tuple[str, str], variant: str
) -> None:
    organization = world.sibling.organization_id
    unique = f"{local}{uuid.uuid4().hex[:8]}@{domain}"
    created = client.post(
        f"/api/organizations/{organization}/users",
        json={"email": padding[0] + unique + padding[1]},
        headers=bearer(world.owner.partner_api_key),
    )
    assert created.status_code == 200, created.text
    assert created.json()["data"]["email"] == unique.lower()

    other_spelling = unique.upper() if variant == "upper" else unique.swapcase()
    again = client.post(
        f"/api/organizations/{organization}/users",
        json={"email": f" {other_spelling} "},
        headers=bearer(world.owner.partner_api_key),
    )
    assert_envelope(again, 409, "user_email_taken")


def _not_an_email() -> st.SearchStrategy[str]:
    invisible = st.sampled_from(
        ["\x00", "\x07", "\x1b", "\x7f", "\u200b", "\u202e", "\u2028", "\ufeff", " ", "\t"]
    )
    return st.one_of(
        st.text(alphabet=st.characters(blacklist_characters="@"), max_size=50),  # no '@'
        st.builds(lambda a, b: f"{a}@@{b}", _LOCAL, _DOMAIN),
        st.builds(lambda a, b, c: f"{a}@{b}@{c}", _LOCAL, _LOCAL, _DOMAIN),
        st.builds(lambda b: f"@{b}", _DOMAIN),
        st.builds(lambda a: f"{a}@", _LOCAL),
        st.builds(lambda a, c, b: f"{a}{c}x@{b}", _LOCAL, invisible, _DOMAIN),
        st.builds(lambda a, c, b: f"{a}@x{c}{b}", _LOCAL, invisible, _DOMAIN),
        st.builds(lambda b: "a" * 320 + f"@{b}", _DOMAIN),
    )


@LIVE
@given(email=_not_an_email())
def test_what_cannot_be_an_email_is_refused(client: httpx.Client, world: World, email: str) -> None:
    organization = world.sibling.organization_id
    before = users_of(client, organization, world.sibling.admin_key)
    response = client.post(
        f"/api/organizations/{organization}/users",
        json={"email": email},
        headers=bearer(world.sibling.admin_key),
    )
    assert_envelope(response, 422, "invalid_email")
    assert users_of(client, organization, world.sibling.admin_key) == before


@LIVE
@given(role=st.text(max_size=30).filter(lambda role: role not in ROLES), as_ids=st.booleans())
def test_roles_are_admin_or_member_exactly(
    client: httpx.Client, world: World, role: str, as_ids: bool
) -> None:
    organization = world.sibling.organization_id
    before = users_of(client, organization, world.sibling.admin_key)
    body = {"email": fresh_email(), **({"role_ids": [role]} if as_ids else {"role": role})}
    response = client.post(
        f"/api/organizations/{organization}/users", json=body, headers=bearer(world.sibling.admin_key)
    )
    error = assert_envelope(response, 422, "invalid_role")
    assert error["metadata"] == {"roles": ROLES}
    assert "admin, member" in error["message"]
    update = client.put(
        f"/api/organizations/{organization}/users/{world.sibling.member_id}",
        json={"role": role},
        headers=bearer(world.sibling.admin_key),
    )
    assert_envelope(update, 422, "invalid_role")
    assert users_of(client, organization, world.sibling.admin_key) == before
