"""The console's server-side sessions on a real store: what a sign-in stores (a hash, never the
token), the idle and absolute ends to the minute, the last-seen time written at most once a minute,
a revoked key ending its sessions, the purge, and the CSRF token bound to its session."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from keyhole.errors import Forbidden, Unauthenticated
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.store.migrate import upgrade
from keyhole.tenancy.browser_sessions import BrowserSessions, csrf_matches
from keyhole.tenancy.models import BrowserSession
from keyhole.tenancy.organizations import OrganizationService
from keyhole.tenancy.repository import TenancyRepository
from keyhole.tenancy.service import BootstrapResult, TenancyService
from keyhole.vault import KeyRing, Vault

IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=8)


@dataclass
class Store:
    database: Database
    tenancy: TenancyService
    sessions: BrowserSessions
    acme: BootstrapResult


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}"
    await upgrade(url)
    database = Database(url)
    organizations = OrganizationService(database, Vault(KeyRing.load(None, tmp_path / "keys")))
    tenancy = TenancyService(database, organizations, cache_ttl_seconds=0)
    sessions = BrowserSessions(
        tenancy,
        TenancyRepository(database),
        idle_seconds=IDLE.total_seconds(),
        lifetime_seconds=LIFETIME.total_seconds(),
    )
    try:
        yield Store(
            database, tenancy, sessions, await tenancy.bootstrap("acme", "ada@acme.test", partner=True)
        )
    finally:
        await database.dispose()


async def rows(store: Store) -> list[BrowserSession]:
    async with store.database.session() as session:
        return list((await session.execute(select(BrowserSession))).scalars())


async def age(
    store: Store, token: str, *, seen: timedelta | None = None, expires: timedelta | None = None
) -> None:
    """Move a session's last-seen time (or its end) this far into the past."""
    values: dict[str, object] = {}
    if seen is not None:
        values["seen_at"] = utcnow() - seen
    if expires is not None:
        values["expires_at"] = utcnow() - expires
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    async with store.database.transaction() as session:
        await session.execute(
            update(BrowserSession).where(BrowserSession.token_hash == token_hash).values(values)
        )


async def test_a_sign_in_stores_a_hash_its_key_and_its_end(store: Store) -> None:
    started = await store.sessions.sign_in(store.acme.user_api_key)
    [row] = await rows(store)
    assert row.token_hash == hashlib.sha256(started.token.encode()).hexdigest()
    assert started.token not in repr(vars(row))
    assert row.key_id == started.session.principal.key_id
    assert row.seen_at == row.created_at
    assert row.expires_at - row.created_at == LIFETIME
    assert started.session.expires_at == row.expires_at


async def test_idle_ends_a_session_to_the_minute(store: Store) -> None:
    started = await store.sessions.sign_in(store.acme.user_api_key)
    await age(store, started.token, seen=IDLE - timedelta(minutes=1))
    await store.sessions.resolve(started.token)
    [row] = await rows(store)
    assert utcnow() - row.seen_at < timedelta(seconds=5)  # a request moves the idle end on
    await age(store, started.token, seen=IDLE + timedelta(minutes=1))
    with pytest.raises(Unauthenticated):
        await store.sessions.resolve(started.token)
    assert await rows(store) == []  # ended sessions are deleted, not left to the purge


async def test_last_seen_is_written_at_most_once_a_minute(store: Store) -> None:
    started = await store.sessions.sign_in(store.acme.user_api_key)
    await age(store, started.token, seen=timedelta(seconds=30))
    [before] = await rows(store)
    await store.sessions.resolve(started.token)
    [after] = await rows(store)
    assert after.seen_at == before.seen_at


async def test_the_absolute_end_holds_however_busy_the_session(store: Store) -> None:
    started = await store.sessions.sign_in(store.acme.user_api_key)
    await age(store, started.token, expires=timedelta(seconds=1))
    with pytest.raises(Unauthenticated):
        await store.sessions.resolve(started.token)


async def test_revoking_the_key_ends_its_sessions(store: Store) -> None:
    started = await store.sessions.sign_in(store.acme.user_api_key)
    other = await store.sessions.sign_in(store.acme.org_api_key)
    await store.tenancy.revoke_key(started.session.principal.key_id)
    with pytest.raises(Unauthenticated):
        await store.sessions.resolve(started.token)
    assert (await store.sessions.resolve(other.token)).principal.kind == "org"


async def test_the_purge_takes_idle_and_expired_sessions_only(store: Store) -> None:
    live = await store.sessions.sign_in(store.acme.user_api_key)
    idle = await store.sessions.sign_in(store.acme.user_api_key)
    expired = await store.sessions.sign_in(store.acme.user_api_key)
    await age(store, idle.token, seen=IDLE + timedelta(minutes=1))
    await age(store, expired.token, expires=timedelta(minutes=1))
    assert await store.sessions.purge_expired() == 2
    assert [row.token_hash for row in await rows(store)] == [hashlib.sha256(live.token.encode()).hexdigest()]


async def test_signing_out_ends_that_session_only(store: Store) -> None:
    first = await store.sessions.sign_in(store.acme.user_api_key)
    second = await store.sessions.sign_in(store.acme.user_api_key)
    assert first.token != second.token  # a fresh token every sign-in: nothing to fixate
    await store.sessions.sign_out(first.token)
    with pytest.raises(Unauthenticated):
        await store.sessions.resolve(first.token)
    await store.sessions.resolve(second.token)


async def test_csrf_tokens_belong_to_their_session(store: Store) -> None:
    first = (await store.sessions.sign_in(store.acme.user_api_key)).session
    second = (await store.sessions.sign_in(store.acme.user_api_key)).session
    assert csrf_matches(first, first.csrf_token)
    assert not csrf_matches(first, second.csrf_token)
    assert not csrf_matches(first, None)
    assert not csrf_matches(first, "")


async def test_what_cannot_sign_in(store: Store) -> None:
    assert store.acme.partner_api_key is not None
    with pytest.raises(Forbidden):
        await store.sessions.sign_in(store.acme.partner_api_key)
    for junk in ("", "kh_u_not-a-key", store.acme.user_api_key + "x", "x" * 600):
        with pytest.raises(Unauthenticated):
            await store.sessions.sign_in(junk)
    for cookie in (None, "", "forged", "x" * 129):
        with pytest.raises(Unauthenticated):
            await store.sessions.resolve(cookie)
    assert await rows(store) == []
