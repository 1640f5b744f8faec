"""The tenancy service's key reads for an organization the caller manages, on a real store: one
key by id (the same 404 for a missing, foreign or malformed id), how many live keys each user
holds, and which keys a forced mint replaced."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keyhole.errors import Forbidden, NotFound
from keyhole.store.database import Database
from keyhole.store.migrate import upgrade
from keyhole.tenancy.organizations import OrganizationService
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.schemas import UserRequest
from keyhole.tenancy.service import BootstrapResult, TenancyService
from keyhole.tenancy.users import UserService
from keyhole.vault import KeyRing, Vault


@dataclass
class Store:
    tenancy: TenancyService
    users: UserService
    acme: BootstrapResult
    admin: Principal  # acme's first user, an admin
    rival: BootstrapResult


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tenancy.db'}"
    await upgrade(url)
    database = Database(url)
    organizations = OrganizationService(database, Vault(KeyRing.load(None, tmp_path / "keys")))
    tenancy = TenancyService(database, organizations)
    users = UserService(database, organizations, tenancy)
    try:
        acme = await tenancy.bootstrap("acme", "ada@acme.test")
        rival = await tenancy.bootstrap("rival", "rob@rival.test")
        admin = await tenancy.principal_for_key(acme.user_api_key)
        yield Store(tenancy, users, acme, admin, rival)
    finally:
        await database.dispose()


async def key_id_of(store: Store, organization_id: str, secret: str) -> str:
    for key in await store.tenancy.list_keys(organization_id):
        if secret.startswith(key.prefix):
            return key.id
    raise AssertionError("no such key")


async def new_user(store: Store, role: str = "member") -> str:
    request = UserRequest(f"{uuid.uuid4().hex[:8]}@acme.test", role)
    return (await store.users.create(store.admin, store.acme.organization_id, request)).id


async def test_one_key_of_a_managed_organization(store: Store) -> None:
    key_id = await key_id_of(store, store.acme.organization_id, store.acme.org_api_key)
    key = await store.tenancy.organization_key(store.admin, store.acme.organization_id, key_id)
    assert (key.id, key.kind, key.user_id, key.revoked_at) == (key_id, "org", None, None)
    assert store.acme.org_api_key.startswith(key.prefix)


async def test_a_missing_foreign_or_malformed_key_id_is_the_same_404(store: Store) -> None:
    foreign = await key_id_of(store, store.rival.organization_id, store.rival.user_api_key)
    own = await key_id_of(store, store.acme.organization_id, store.acme.user_api_key)
    for key_id in (str(uuid.uuid4()), foreign, "not-a-key", own.upper(), "x" * 10_000):
        with pytest.raises(NotFound) as refused:
            await store.tenancy.organization_key(store.admin, store.acme.organization_id, key_id)
        assert (refused.value.message, refused.value.key) == ("API key not found", "not_found")
        assert refused.value.metadata == {"id": key_id[:64]}


async def test_only_a_managing_caller_reads_a_key(store: Store) -> None:
    key_id = await key_id_of(store, store.acme.organization_id, store.acme.org_api_key)
    with pytest.raises(NotFound):  # another organization: as if it did not exist
        await store.tenancy.organization_key(store.admin, store.rival.organization_id, key_id)
    member_id = await new_user(store)
    minted = await store.tenancy.mint_user_key(
        store.admin, store.acme.organization_id, member_id, force=False
    )
    member = await store.tenancy.principal_for_key(minted.secret)
    with pytest.raises(Forbidden):
        await store.tenancy.organization_key(member, store.acme.organization_id, key_id)


async def test_live_keys_are_counted_per_user_revoked_ones_not(store: Store) -> None:
    organization_id = store.acme.organization_id
    user_id = await new_user(store)
    first = await store.tenancy.mint_user_key(store.admin, organization_id, user_id, force=False)
    await store.tenancy.mint_user_key(store.admin, organization_id, user_id, force=False)
    await store.tenancy.mint_user_key(store.admin, organization_id, user_id, force=False)
    await store.tenancy.revoke_organization_key(store.admin, organization_id, first.view.id)
    idle = await new_user(store)  # no key at all

    counts = await store.tenancy.live_key_counts(store.admin, organization_id)
    # The organization key is nobody's; the rival's keys are another organization's.
    assert counts == {store.acme.user_id: 1, user_id: 2}
    assert idle not in counts
    with pytest.raises(NotFound):
        await store.tenancy.live_key_counts(store.admin, store.rival.organization_id)


async def test_a_forced_mint_names_the_keys_it_replaced(store: Store) -> None:
    organization_id = store.acme.organization_id
    user_id = await new_user(store)
    first = await store.tenancy.mint_user_key(store.admin, organization_id, user_id, force=False)
    second = await store.tenancy.mint_user_key(store.admin, organization_id, user_id, force=False)
    assert (first.replaced, second.replaced) == ((), ())
    third = await store.tenancy.mint_user_key(store.admin, organization_id, user_id, force=True)
    assert sorted(third.replaced) == sorted([first.view.id, second.view.id])
    assert (await store.tenancy.live_key_counts(store.admin, organization_id))[user_id] == 1
    fourth = await store.tenancy.mint_user_key(store.admin, organization_id, user_id, force=True)
    assert fourth.replaced == (third.view.id,)  # revoked keys are not replaced twice
