"""Tenancy operations: bootstrap, key lifecycle, and authentication of presented keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from keyhole.cache import TtlCache
from keyhole.errors import NotFound, Unauthenticated
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.tenancy import keys
from keyhole.tenancy.credentials import presented_key
from keyhole.tenancy.models import ApiKey
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.repository import TenancyRepository

_INVALID = "invalid API key: check the key, or mint a new one with `keyhole keys create`"


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    organization_id: str
    user_id: str
    user_api_key: str
    org_api_key: str


@dataclass(frozen=True, slots=True)
class KeyView:
    id: str
    organization_id: str
    user_id: str | None
    kind: str
    prefix: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class MintedKey:
    view: KeyView
    secret: str


class TenancyService:
    def __init__(self, database: Database, *, cache_ttl_seconds: float = 1.0) -> None:
        self._db = database
        self._rows = TenancyRepository(database)
        # Keyed by key hash. Only successes are cached, so junk keys cannot grow it beyond the
        # number of live keys; a revocation in this process evicts at once.
        self._principals: TtlCache[str, Principal] = TtlCache(cache_ttl_seconds)

    async def bootstrap(self, organization_name: str, email: str) -> BootstrapResult:
        async with self._db.transaction() as session:
            organization = await self._rows.organization_named(session, organization_name)
            if organization is None:
                organization = await self._rows.create_organization(session, organization_name)
            user = await self._rows.user_with_email(session, organization.id, email)
            if user is None:
                user = await self._rows.create_user(session, organization.id, email)
            user_key = keys.mint("user")
            org_key = keys.mint("org")
            self._rows.add_keys(
                session,
                _key_row(organization.id, user.id, "user", user_key, "bootstrap"),
                _key_row(organization.id, None, "org", org_key, "bootstrap"),
            )
            return BootstrapResult(organization.id, user.id, user_key, org_key)

    async def create_key(
        self, organization_id: str, *, user_id: str | None, name: str | None = None
    ) -> MintedKey:
        async with self._db.transaction() as session:
            if await self._rows.organization(session, organization_id) is None:
                raise NotFound(f"organization {organization_id} not found")
            if user_id is not None and await self._rows.user(session, organization_id, user_id) is None:
                raise NotFound(f"user {user_id} not found in organization {organization_id}")
            secret = keys.mint("user" if user_id else "org")
            row = _key_row(organization_id, user_id, "user" if user_id else "org", secret, name)
            await self._rows.insert_key(session, row)
            return MintedKey(_view(row), secret)

    async def list_keys(self, organization_id: str | None = None) -> list[KeyView]:
        return [_view(row) for row in await self._rows.keys(organization_id)]

    async def revoke_key(self, key_id: str) -> KeyView:
        async with self._db.transaction() as session:
            row = await self._rows.key(session, key_id)
            if row is None:
                raise NotFound(f"API key {key_id} not found")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            self._principals.evict(row.key_hash)
            return _view(row)

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        presented = presented_key(headers)
        key_hash = keys.digest(presented.key)
        principal = await self._principals.get(key_hash, lambda: self._lookup(key_hash))
        if presented.scheme == "basic" and (
            principal.kind != "org" or principal.organization_id != presented.organization_id
        ):
            raise Unauthenticated(
                "Basic credentials must pair an organization id with one of that organization's keys",
                key="invalid_api_key",
            )
        return principal

    async def _lookup(self, key_hash: str) -> Principal:
        row = await self._rows.key_with_hash(key_hash)
        if row is None or row.revoked_at is not None:
            raise Unauthenticated(_INVALID, key="invalid_api_key")
        kind: keys.KeyKind = "user" if row.kind == "user" else "org"
        return Principal(row.organization_id, row.id, kind, row.user_id)


def _key_row(organization_id: str, user_id: str | None, kind: str, secret: str, name: str | None) -> ApiKey:
    return ApiKey(
        organization_id=organization_id,
        user_id=user_id,
        kind=kind,
        prefix=keys.display_prefix(secret),
        key_hash=keys.digest(secret),
        name=name,
        created_at=utcnow(),
    )


def _view(row: ApiKey) -> KeyView:
    return KeyView(
        row.id,
        row.organization_id,
        row.user_id,
        row.kind,
        row.prefix,
        row.name,
        row.created_at,
        row.revoked_at,
    )
