"""Every statement on the ``connections`` table, for both of its views (connections and
connected accounts). Each method takes the organization id and reads or writes only its rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.connections.models import Connection
from keyhole.store.database import Database


@dataclass(frozen=True, slots=True)
class AccountQuery:
    """Which rows a page of connected accounts holds. An account without an owner or a status
    (one created through the Polytomic dialect) matches as ``default_user_id`` / ``default_status``;
    ``ids`` of None means any id, an empty list none."""

    type_ids: Sequence[str]
    default_user_id: str
    default_status: str
    user_ids: Sequence[str] = ()
    statuses: Sequence[str] = ()
    auth_config_ids: Sequence[str] = ()
    ids: Sequence[str] | None = None
    by_updated_at: bool = False
    descending: bool = True


_Columns = TypeVarTuple("_Columns")


def _scoped(statement: Select[*_Columns], organization_id: str) -> Select[*_Columns]:
    return statement.where(Connection.organization_id == organization_id)


class ConnectionRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(
        self, organization_id: str, connection_id: str, *, session: AsyncSession | None = None
    ) -> Connection | None:
        """The row by primary key (in ``session`` when given), or None when another organization
        owns it."""
        if session is None:
            async with self._db.session() as own:
                row = await own.get(Connection, connection_id)
        else:
            row = await session.get(Connection, connection_id)
        if row is None or row.organization_id != organization_id:
            return None
        return row

    async def get_all(self, organization_id: str) -> list[Connection]:
        async with self._db.session() as session:
            statement = _scoped(select(Connection), organization_id)
            rows = await session.execute(statement.order_by(Connection.created_at, Connection.id))
            return list(rows.scalars())

    async def page_by_name(
        self, organization_id: str, *, type_id: str | None, name_part: str | None, offset: int, limit: int
    ) -> tuple[list[Connection], int]:
        """One page of the organization's connections ordered by name (of one type, whose name
        holds ``name_part`` in any case, when given), and how many match in all."""
        statement = _scoped(select(Connection), organization_id)
        if type_id is not None:
            statement = statement.where(Connection.type_id == type_id)
        if name_part:
            statement = statement.where(
                func.lower(Connection.name).contains(name_part.lower(), autoescape=True)
            )
        async with self._db.session() as session:
            total = (
                await session.execute(select(func.count()).select_from(statement.subquery()))
            ).scalar_one()
            rows = await session.execute(
                statement.order_by(Connection.name, Connection.id).offset(offset).limit(limit)
            )
            return list(rows.scalars()), int(total)

    async def labels(self, organization_id: str) -> list[tuple[str, str, str]]:
        """Every connection's id, name and type id, by name: three columns, no row loaded whole
        (a picker of a thousand connections reads them in a few milliseconds)."""
        statement = _scoped(select(Connection.id, Connection.name, Connection.type_id), organization_id)
        async with self._db.session() as session:
            rows = await session.execute(statement.order_by(Connection.name, Connection.id))
            return [(row[0], row[1], row[2]) for row in rows]

    async def add(self, row: Connection) -> None:
        async with self._db.transaction() as session:
            session.add(row)

    async def delete(self, session: AsyncSession, row: Connection) -> None:
        """Delete a row read with :meth:`get` in the same ``session``."""
        await session.delete(row)

    # -- shared copies (rows of other organizations whose ``parent_connection_id`` is the parent) --

    async def copy_keys(self, session: AsyncSession, parent_id: str) -> list[tuple[str, str]]:
        """``(organization_id, id)`` of each shared copy of the connection."""
        statement = select(Connection.organization_id, Connection.id).where(
            Connection.parent_connection_id == parent_id
        )
        return [
            (str(organization_id), str(copy_id))
            for organization_id, copy_id in await session.execute(statement)
        ]

    async def copies(self, parent_id: str) -> list[Connection]:
        """The shared copies of the connection, oldest first."""
        async with self._db.session() as session:
            statement = select(Connection).where(Connection.parent_connection_id == parent_id)
            rows = await session.execute(statement.order_by(Connection.created_at, Connection.id))
            return list(rows.scalars())

    async def copy_in(self, session: AsyncSession, parent_id: str, organization_id: str) -> Connection | None:
        """The organization's shared copy of the connection, if it has one."""
        statement = _scoped(select(Connection), organization_id).where(
            Connection.parent_connection_id == parent_id
        )
        return (await session.execute(statement)).scalars().first()

    async def insert(self, session: AsyncSession, row: Connection) -> None:
        """Written now, in the caller's transaction (a duplicate fails here, not at commit)."""
        session.add(row)
        await session.flush()

    async def count_by_auth_config(
        self, session: AsyncSession, organization_id: str, auth_config_ids: Sequence[str]
    ) -> dict[str, int]:
        """How many connected accounts use each of the auth configs (absent when none)."""
        statement = _scoped(select(Connection.auth_config_id, func.count()), organization_id)
        rows = await session.execute(
            statement.where(Connection.auth_config_id.in_(list(auth_config_ids))).group_by(
                Connection.auth_config_id
            )
        )
        return {str(config_id): int(count) for config_id, count in rows}

    async def account_page(
        self, organization_id: str, query: AccountQuery, *, offset: int, limit: int
    ) -> tuple[list[Connection], int]:
        """One page of accounts in the query's order, and how many match in all."""
        statement = _scoped(select(Connection), organization_id).where(
            Connection.type_id.in_(list(query.type_ids))
        )
        if query.user_ids:
            owner = func.coalesce(Connection.account_user_id, query.default_user_id)
            statement = statement.where(owner.in_(list(query.user_ids)))
        if query.statuses:
            status = func.coalesce(Connection.account_status, query.default_status)
            statement = statement.where(status.in_(list(query.statuses)))
        if query.auth_config_ids:
            statement = statement.where(Connection.auth_config_id.in_(list(query.auth_config_ids)))
        if query.ids is not None:
            statement = statement.where(Connection.id.in_(list(query.ids)))
        column = Connection.updated_at if query.by_updated_at else Connection.created_at
        order = (column.desc(), Connection.id.desc()) if query.descending else (column.asc(), Connection.id)
        async with self._db.session() as session:
            total = (
                await session.execute(select(func.count()).select_from(statement.subquery()))
            ).scalar_one()
            rows = (await session.execute(statement.order_by(*order).offset(offset).limit(limit))).scalars()
            return list(rows), int(total)

    async def alias_taken(
        self,
        organization_id: str,
        *,
        type_id: str,
        user_id: str,
        default_user_id: str,
        alias: str,
        other_than: str,
    ) -> bool:
        """Whether another account of ``user_id`` (an unowned one counting as ``default_user_id``)
        of the same type already has ``alias``."""
        statement = _scoped(select(Connection.id), organization_id).where(
            Connection.type_id == type_id,
            func.coalesce(Connection.account_user_id, default_user_id) == user_id,
            Connection.account_alias == alias,
            Connection.id != other_than,
        )
        async with self._db.session() as session:
            return (await session.execute(statement)).first() is not None
