"""Every statement on organizations, users, API keys and the console's browser sessions.

Users are read only within their organization. Keys are found by hash (authentication comes
before any organization is known) or by id and across organizations (the operator's
``keyhole keys`` commands).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.store.database import Database
from keyhole.tenancy.models import ApiKey, BrowserSession, Organization, User


def _in_partner_account(partner_id: str) -> ColumnElement[bool]:
    """The partner's owner organization, or one the partner manages."""
    return (Organization.id == partner_id) | (Organization.partner_organization_id == partner_id)


class TenancyRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    # -- organizations and users (in the caller's transaction) ---------------------------------

    async def organization(self, session: AsyncSession, organization_id: str) -> Organization | None:
        return await session.get(Organization, organization_id)

    async def top_level_organization_named(self, session: AsyncSession, name: str) -> Organization | None:
        """The organization of that name no partner manages (the operator's own, by name)."""
        statement = select(Organization).where(
            Organization.name == name, Organization.partner_organization_id.is_(None)
        )
        return (await session.execute(statement)).scalars().first()

    async def create_organization(
        self, session: AsyncSession, name: str, *, partner_organization_id: str | None = None
    ) -> Organization:
        organization = Organization(name=name, partner_organization_id=partner_organization_id)
        session.add(organization)
        await session.flush()
        return organization

    async def partner_account(self, session: AsyncSession, partner_id: str) -> list[Organization]:
        """The owner organization first, then the ones the partner manages, oldest first."""
        statement = (
            select(Organization)
            .where(_in_partner_account(partner_id))
            .order_by((Organization.id != partner_id), Organization.created_at, Organization.id)
        )
        return list((await session.execute(statement)).scalars())

    async def name_taken_in_partner_account(
        self, session: AsyncSession, partner_id: str, name: str, *, other_than: str | None
    ) -> bool:
        statement = select(Organization.id).where(
            Organization.name == name,
            _in_partner_account(partner_id),
        )
        if other_than is not None:
            statement = statement.where(Organization.id != other_than)
        return (await session.execute(statement)).first() is not None

    async def delete_organization(self, session: AsyncSession, organization: Organization) -> None:
        """Its rows in other tables go by their foreign keys' ON DELETE CASCADE."""
        await session.delete(organization)
        await session.flush()

    async def user(self, session: AsyncSession, organization_id: str, user_id: str) -> User | None:
        user = await session.get(User, user_id)
        if user is None or user.organization_id != organization_id:
            return None
        return user

    async def user_with_email(self, session: AsyncSession, organization_id: str, email: str) -> User | None:
        statement = select(User).where(User.organization_id == organization_id, User.email == email)
        return (await session.execute(statement)).scalar_one_or_none()

    async def create_user(
        self, session: AsyncSession, organization_id: str, email: str, *, role: str = "member"
    ) -> User:
        user = User(organization_id=organization_id, email=email, role=role)
        session.add(user)
        await session.flush()
        return user

    async def users(self, session: AsyncSession, organization_id: str) -> list[User]:
        """Oldest first."""
        statement = (
            select(User).where(User.organization_id == organization_id).order_by(User.created_at, User.id)
        )
        return list((await session.execute(statement)).scalars())

    async def email_taken(self, session: AsyncSession, organization_id: str, email: str) -> bool:
        """Whether a user of the organization has this (lower-case) email in any letter case:
        rows written before emails were normalised may keep their original case."""
        statement = select(User.id).where(
            User.organization_id == organization_id, func.lower(User.email) == email
        )
        return (await session.execute(statement)).first() is not None

    async def delete_user(self, session: AsyncSession, user: User) -> None:
        """Its keys go by their foreign key's ON DELETE CASCADE."""
        await session.delete(user)
        await session.flush()

    # -- API keys ------------------------------------------------------------------------------

    def add_keys(self, session: AsyncSession, *rows: ApiKey) -> None:
        """Written when the caller's transaction commits."""
        session.add_all(rows)

    async def insert_key(self, session: AsyncSession, row: ApiKey) -> None:
        """Written now, in the caller's transaction (the row gets its id)."""
        session.add(row)
        await session.flush()

    async def key(self, session: AsyncSession, key_id: str) -> ApiKey | None:
        return await session.get(ApiKey, key_id)

    async def keys(
        self, session: AsyncSession, organization_id: str | None, *, prefix: str | None = None
    ) -> list[ApiKey]:
        """Oldest first; every organization's when ``organization_id`` is empty; only those whose
        display prefix starts with ``prefix`` when it is given."""
        statement = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        if organization_id:
            statement = statement.where(ApiKey.organization_id == organization_id)
        if prefix:
            # Key prefixes contain '_', a LIKE wildcard: escaped.
            statement = statement.where(ApiKey.prefix.startswith(prefix, autoescape=True))
        return list((await session.execute(statement)).scalars())

    async def active_user_keys(self, session: AsyncSession, user_id: str) -> list[ApiKey]:
        statement = select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        return list((await session.execute(statement)).scalars())

    async def live_user_key_counts(self, session: AsyncSession, organization_id: str) -> dict[str, int]:
        """User id → how many unrevoked keys; users without one are absent."""
        statement = (
            select(ApiKey.user_id, func.count())
            .where(
                ApiKey.organization_id == organization_id,
                ApiKey.user_id.is_not(None),
                ApiKey.revoked_at.is_(None),
            )
            .group_by(ApiKey.user_id)
        )
        return {str(user_id): int(count) for user_id, count in (await session.execute(statement)).all()}

    async def key_with_hash(self, key_hash: str) -> tuple[ApiKey, str | None] | None:
        """The key and, for a user key, its user's role."""
        async with self._db.session() as session:
            statement = (
                select(ApiKey, User.role)
                .outerjoin(User, User.id == ApiKey.user_id)
                .where(ApiKey.key_hash == key_hash)
            )
            found = (await session.execute(statement)).first()
            return None if found is None else (found[0], found[1])

    async def in_partner_account(self, organization_id: str, partner_id: str) -> bool:
        """Whether the organization is the partner's owner organization or one it manages."""
        async with self._db.session() as session:
            statement = select(Organization.id).where(
                Organization.id == organization_id,
                _in_partner_account(partner_id),
            )
            return (await session.execute(statement)).first() is not None

    # -- browser sessions ----------------------------------------------------------------------

    async def add_browser_session(self, row: BrowserSession) -> None:
        async with self._db.transaction() as session:
            session.add(row)

    async def browser_session(self, token_hash: str) -> tuple[BrowserSession, ApiKey, str | None] | None:
        """The session, its key (revoked or not) and, for a user key, its user's role."""
        async with self._db.session() as session:
            statement = (
                select(BrowserSession, ApiKey, User.role)
                .join(ApiKey, ApiKey.id == BrowserSession.key_id)
                .outerjoin(User, User.id == ApiKey.user_id)
                .where(BrowserSession.token_hash == token_hash)
            )
            found = (await session.execute(statement)).first()
            return None if found is None else (found[0], found[1], found[2])

    async def touch_browser_session(self, token_hash: str, seen_at: datetime) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                update(BrowserSession).where(BrowserSession.token_hash == token_hash).values(seen_at=seen_at)
            )

    async def delete_browser_session(self, token_hash: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(delete(BrowserSession).where(BrowserSession.token_hash == token_hash))

    async def delete_browser_sessions_before(self, expires_before: datetime, seen_before: datetime) -> int:
        """Sessions past their absolute end or idle since ``seen_before``; how many."""
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(BrowserSession).where(
                    (BrowserSession.expires_at < expires_before) | (BrowserSession.seen_at < seen_before)
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
