"""Every statement on ``auth_configs``, in the caller's session, scoped to one organization."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVarTuple

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.authconfigs.models import AuthConfig
from keyhole.store.database import Database

_Columns = TypeVarTuple("_Columns")


def _scoped(statement: Select[*_Columns], organization_id: str) -> Select[*_Columns]:
    return statement.where(AuthConfig.organization_id == organization_id)


class AuthConfigRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, session: AsyncSession, organization_id: str, config_id: str) -> AuthConfig | None:
        # Ids are at most 64 characters: a longer one names nothing and costs no round trip.
        row = await session.get(AuthConfig, config_id) if len(config_id) <= 64 else None
        if row is None or row.organization_id != organization_id:
            return None
        return row

    async def page(
        self,
        session: AsyncSession,
        organization_id: str,
        *,
        toolkit_slugs: Sequence[str],
        show_disabled: bool,
        search: str | None,
        offset: int,
        limit: int,
    ) -> tuple[list[AuthConfig], int]:
        """Newest first; ``search`` matches the name or the toolkit, case-insensitively. Also how
        many match in all."""
        query = _scoped(select(AuthConfig), organization_id)
        if toolkit_slugs:
            query = query.where(AuthConfig.toolkit_slug.in_(list(toolkit_slugs)))
        if not show_disabled:
            query = query.where(AuthConfig.enabled.is_(True))
        if search:
            pattern = f"%{search.lower()}%"
            query = query.where(
                or_(
                    func.lower(AuthConfig.name).like(pattern),
                    func.lower(AuthConfig.toolkit_slug).like(pattern),
                )
            )
        total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
        rows = await session.execute(
            query.order_by(AuthConfig.created_at.desc(), AuthConfig.id).offset(offset).limit(limit)
        )
        return list(rows.scalars()), int(total)

    async def add(self, row: AuthConfig) -> None:
        async with self._db.transaction() as session:
            session.add(row)

    async def delete(self, session: AsyncSession, row: AuthConfig) -> None:
        """Delete a row read with :meth:`get` in the same ``session``."""
        await session.delete(row)
