"""Tenancy operations: bootstrap, key lifecycle, and authentication of presented keys."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.cache import TtlCache
from keyhole.errors import InvalidRequest, NotFound, Unauthenticated, Unprocessable
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.tenancy import keys
from keyhole.tenancy.access import Access, require
from keyhole.tenancy.credentials import presented_key
from keyhole.tenancy.emails import normalised_email
from keyhole.tenancy.missing import is_uuid, key_not_found, organization_not_found, user_not_found
from keyhole.tenancy.models import ApiKey
from keyhole.tenancy.organizations import OrganizationService
from keyhole.tenancy.principal import Principal, Role
from keyhole.tenancy.repository import TenancyRepository
from keyhole.tenancy.schemas import IdentityView

_INVALID = "invalid API key: check the key, or mint a new one with `keyhole keys create`"
# What a key listing's ``prefix`` filter may hold: the characters of a displayed key prefix.
PREFIX_FILTER = re.compile(r"^[A-Za-z0-9_-]*$")
MAX_KEY_NAME = 200  # the width of the name column


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    organization_id: str
    user_id: str
    user_api_key: str
    org_api_key: str
    partner_api_key: str | None  # minted when asked for: this organization owns a partner account


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
    replaced: tuple[str, ...] = ()  # the ids of the user's keys a forced mint revoked


class TenancyService:
    def __init__(
        self, database: Database, organizations: OrganizationService, *, cache_ttl_seconds: float = 1.0
    ) -> None:
        self._db = database
        self._rows = TenancyRepository(database)
        self._organizations = organizations  # which organization a caller may manage
        # Keyed by key hash. Only successes are cached, so junk keys cannot grow it beyond the
        # number of live keys; a revocation in this process evicts at once.
        self._principals: TtlCache[str, Principal] = TtlCache(cache_ttl_seconds)
        # (partner, organization) pairs a partner key's Basic credentials named; only a reach
        # found is cached, like a principal.
        self._partner_reach: TtlCache[tuple[str, str], bool] = TtlCache(cache_ttl_seconds)

    async def bootstrap(
        self, organization_name: str, email: str, *, partner: bool = False
    ) -> BootstrapResult:
        """Create or reuse an organization and its first user (an admin); mint a user key, an
        organization key and, with ``partner``, a partner key that manages organizations."""
        email = normalised_email(email)
        async with self._db.transaction() as session:
            organization = await self._rows.top_level_organization_named(session, organization_name)
            if organization is None:
                organization = await self._rows.create_organization(session, organization_name)
            user = await self._rows.user_with_email(session, organization.id, email)
            if user is None:
                user = await self._rows.create_user(session, organization.id, email, role="admin")
            user_key = keys.mint("user")
            org_key = keys.mint("org")
            rows = [
                _key_row(organization.id, user.id, "user", user_key, "bootstrap"),
                _key_row(organization.id, None, "org", org_key, "bootstrap"),
            ]
            partner_key = keys.mint("partner") if partner else None
            if partner_key is not None:
                rows.append(_key_row(organization.id, None, "partner", partner_key, "bootstrap"))
            self._rows.add_keys(session, *rows)
            return BootstrapResult(organization.id, user.id, user_key, org_key, partner_key)

    async def create_key(
        self,
        organization_id: str,
        *,
        user_id: str | None,
        name: str | None = None,
        partner: bool = False,
    ) -> MintedKey:
        """A user key (``user_id``), an organization key, or a partner key (``partner``: the
        organization becomes a partner account's owner; one another partner manages cannot)."""
        async with self._db.transaction() as session:
            organization = await self._rows.organization(session, organization_id)
            if organization is None:
                raise NotFound(f"organization {organization_id} not found")
            if user_id is not None and await self._rows.user(session, organization_id, user_id) is None:
                raise NotFound(f"user {user_id} not found in organization {organization_id}")
            kind: keys.KeyKind = "user" if user_id else "org"
            if partner:
                if user_id is not None:
                    raise InvalidRequest("a partner key belongs to an organization, not to a user")
                if organization.partner_organization_id is not None:
                    raise InvalidRequest(
                        f"organization {organization_id} is managed by a partner account; partner "
                        "keys belong to the partner's owner organization",
                        key="nested_partner",
                    )
                kind = "partner"
            secret = keys.mint(kind)
            row = _key_row(organization_id, user_id, kind, secret, name)
            await self._rows.insert_key(session, row)
            return MintedKey(_view(row), secret)

    async def list_keys(
        self, organization_id: str | None = None, *, prefix: str | None = None
    ) -> list[KeyView]:
        """Every organization's keys, or one's (the operator's ``keyhole keys list``)."""
        checked = _prefix_filter(prefix)
        async with self._db.session() as session:
            return [_view(row) for row in await self._rows.keys(session, organization_id, prefix=checked)]

    async def organization_keys(
        self, principal: Principal, organization_id: str, *, prefix: str | None = None
    ) -> list[KeyView]:
        """The keys of an organization the caller manages, revoked ones included, oldest first."""
        checked = _prefix_filter(prefix)
        async with self._db.session() as session:
            organization = await self._organizations.managed(session, principal, organization_id)
            rows = await self._rows.keys(session, organization.id, prefix=checked)
        return [_view(row) for row in rows]

    async def organization_key(self, principal: Principal, organization_id: str, key_id: str) -> KeyView:
        """A key of an organization the caller manages, revoked or not (404 for any other key)."""
        async with self._db.session() as session:
            return _view(await self._managed_key(session, principal, organization_id, key_id))

    async def live_key_counts(self, principal: Principal, organization_id: str) -> dict[str, int]:
        """How many unrevoked keys each user of an organization the caller manages holds, by user
        id; a user without one is absent."""
        async with self._db.session() as session:
            organization = await self._organizations.managed(session, principal, organization_id)
            return await self._rows.live_user_key_counts(session, organization.id)

    async def mint_user_key(
        self,
        principal: Principal,
        organization_id: str,
        user_id: str,
        *,
        force: bool,
        name: str | None = None,
    ) -> MintedKey:
        """A new key for a user of an organization the caller manages. With ``force`` the user's
        other keys are revoked in the same transaction, and stop working in this process at once."""
        label = _key_name(name)
        try:
            async with self._db.transaction() as session:
                organization = await self._organizations.managed(session, principal, organization_id)
                if not is_uuid(user_id) or await self._rows.user(session, organization.id, user_id) is None:
                    raise user_not_found(user_id)
                revoked = await self._revoke_user_keys(session, user_id) if force else []
                secret = keys.mint("user")
                row = _key_row(organization.id, user_id, "user", secret, label)
                await self._rows.insert_key(session, row)
        except IntegrityError:  # the user was deleted meanwhile
            raise user_not_found(user_id) from None
        for revoked_row in revoked:
            self._principals.evict(revoked_row.key_hash)
        return MintedKey(_view(row), secret, tuple(revoked_row.id for revoked_row in revoked))

    async def revoke_organization_key(
        self, principal: Principal, organization_id: str, key_id: str
    ) -> KeyView:
        """Revoke a key of an organization the caller manages (404 for any other key); it stops
        working in this process at once. Revoking a revoked key changes nothing."""
        async with self._db.transaction() as session:
            row = await self._managed_key(session, principal, organization_id, key_id)
            if row.revoked_at is None:
                row.revoked_at = utcnow()
        self._principals.evict(row.key_hash)
        return _view(row)

    async def _managed_key(
        self, session: AsyncSession, principal: Principal, organization_id: str, key_id: str
    ) -> ApiKey:
        organization = await self._organizations.managed(session, principal, organization_id)
        row = await self._rows.key(session, key_id) if is_uuid(key_id) else None
        if row is None or row.organization_id != organization.id:
            raise key_not_found(key_id)
        return row

    async def revoke_key(self, key_id: str) -> KeyView:
        async with self._db.transaction() as session:
            row = await self._rows.key(session, key_id)
            if row is None:
                raise NotFound(f"API key {key_id} not found")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            self._principals.evict(row.key_hash)
            return _view(row)

    async def _revoke_user_keys(self, session: AsyncSession, user_id: str) -> list[ApiKey]:
        """Revoke the user's live keys in the caller's transaction; their rows, to evict."""
        now = utcnow()
        rows = await self._rows.active_user_keys(session, user_id)
        for row in rows:
            row.revoked_at = now
        return rows

    def forget_user(self, user_id: str) -> None:
        """Stop using, in this process, the cached principals of a user's keys at once (the user
        was deleted, or its role changed)."""
        self._principals.evict_where(lambda _, principal: principal.user_id == user_id)

    def forget_organization(self, organization_id: str) -> None:
        """Stop accepting, in this process, the keys of a deleted organization at once."""
        self._principals.evict_where(
            lambda _, principal: organization_id in (principal.organization_id, principal.partner_id)
        )
        self._partner_reach.evict_where(lambda key, _: organization_id in key)

    async def identity(self, principal: Principal) -> IdentityView:
        """Who the caller is, and the organization it acts for."""
        async with self._db.session() as session:
            organization = await self._rows.organization(session, principal.organization_id)
            if organization is None:
                raise organization_not_found(principal.organization_id)
            user = (
                None
                if principal.user_id is None
                else await self._rows.user(session, organization.id, principal.user_id)
            )
        return IdentityView(
            kind=principal.kind,
            organization_id=organization.id,
            organization_name=organization.name,
            user_id=None if user is None else user.id,
            email=None if user is None else user.email,
            role=None if user is None else user.role,
        )

    async def authenticate(self, headers: Mapping[str, str], access: Access = Access.RESOURCES) -> Principal:
        """The caller the headers name, refused (403) when its kind of key may not reach ``access``."""
        presented = presented_key(headers)
        principal = await self.principal_for_key(presented.key)
        if presented.scheme == "basic":
            principal = await self._acting_for(principal, presented.organization_id or "")
        require(principal, access)
        return principal

    async def _acting_for(self, principal: Principal, organization_id: str) -> Principal:
        """Basic ``org_id:key``: an organization key of that organization, or a partner key acting
        for its owner organization or one the partner manages."""
        if principal.kind == "org" and principal.organization_id == organization_id:
            return principal
        if principal.kind == "partner" and principal.partner_id is not None:
            partner_id = principal.partner_id
            await self._partner_reach.get(
                (partner_id, organization_id), lambda: self._reach(partner_id, organization_id)
            )
            return replace(principal, organization_id=organization_id)
        raise _basic_mismatch()

    async def _reach(self, partner_id: str, organization_id: str) -> bool:
        """True, or Unauthenticated (failures are not cached: a new organization is reachable at once)."""
        if not is_uuid(organization_id) or not await self._rows.in_partner_account(
            organization_id, partner_id
        ):
            raise _basic_mismatch()
        return True

    async def principal_for_key(self, secret: str) -> Principal:
        """The caller a whole key names (as a Bearer key), without any access check: what
        ``authenticate`` checks, and the console's sign-in form, which then refuses what it cannot
        serve."""
        key_hash = keys.digest(secret)
        return await self._principals.get(key_hash, lambda: self._lookup(key_hash))

    async def _lookup(self, key_hash: str) -> Principal:
        found = await self._rows.key_with_hash(key_hash)
        if found is None or found[0].revoked_at is not None:
            raise Unauthenticated(_INVALID, key="invalid_api_key")
        return principal_of_key(*found)


def principal_of_key(row: ApiKey, role: str | None) -> Principal:
    """The principal a live key row stands for; ``role`` is its user's, for a user key."""
    if row.kind == "partner":
        return Principal(row.organization_id, row.id, "partner", None, partner_id=row.organization_id)
    if row.kind == "user":
        return Principal(row.organization_id, row.id, "user", row.user_id, role=_role(role))
    return Principal(row.organization_id, row.id, "org", None)


def _basic_mismatch() -> Unauthenticated:
    return Unauthenticated(
        "Basic credentials must pair an organization id with one of that organization's keys, "
        "or with a partner key of the partner account that manages it",
        key="invalid_api_key",
    )


def _prefix_filter(prefix: str | None) -> str | None:
    """A key prefix to filter by (empty: none), refused when it could not start a key's prefix:
    a longer value may be a whole key, which has no place in a URL or a shell history."""
    if not prefix:
        return None
    if len(prefix) > keys.PREFIX_LENGTH or not PREFIX_FILTER.fullmatch(prefix):
        raise InvalidRequest(
            f"prefix must be the start of a key's {keys.PREFIX_LENGTH}-character prefix as key "
            "listings show it (letters, digits, '_' and '-'); never send a whole key",
            key="invalid_prefix",
            metadata={"field": "prefix"},
        )
    return prefix


def _key_name(name: str | None) -> str | None:
    """A key's label as given, trimmed (blank: none); 422 when it is longer than the column or
    holds control or invisible format characters, which would garble a listing."""
    label = (name or "").strip()
    if not label:
        return None
    if len(label) > MAX_KEY_NAME or any(unicodedata.category(character)[0] == "C" for character in label):
        raise Unprocessable(
            f"a key's name is at most {MAX_KEY_NAME} characters, without control characters",
            key="invalid_key_name",
            metadata={"field": "name"},
        )
    return label


def _role(stored: str | None) -> Role:
    return "admin" if stored == "admin" else "member"


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
