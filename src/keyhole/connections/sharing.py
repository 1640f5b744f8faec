"""Shared connections: a partner account gives one of its organizations a copy of a connection
another of its organizations owns.

A copy has its own id, organization and name, and nothing else of its own: its configuration,
secret, status and proxy setting are its parent's, resolved by ``ConnectionService`` at every
read. So re-keying, disabling or deleting the parent reaches every copy, and the copy's
organization can use the credential without being able to read or change it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from keyhole.connections.models import Connection
from keyhole.connections.repository import ConnectionRepository
from keyhole.connections.schemas import ConnectionView
from keyhole.connections.service import ConnectionService
from keyhole.errors import Conflict, Unprocessable
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.tenancy.access import partner_account
from keyhole.tenancy.missing import is_uuid, organization_not_found
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.repository import TenancyRepository


@dataclass(frozen=True, slots=True)
class ShareRequest:
    child_organization_id: str
    name: str | None = None  # None: the parent's name


def _already_shared(copy_id: str) -> Conflict:
    return Conflict(
        "the connection is already shared with this organization; its shared copy is metadata.id",
        key="already_shared",
        metadata={"id": copy_id},
    )


class SharingService:
    def __init__(self, database: Database, connections: ConnectionService) -> None:
        self._db = database
        self._rows = ConnectionRepository(database)
        self._organizations = TenancyRepository(database)
        self._connections = connections

    async def share(
        self, principal: Principal, organization_id: str, connection_id: str, request: ShareRequest
    ) -> ConnectionView:
        """Give ``request.child_organization_id`` a copy of a connection of the partner's owner
        organization (``organization_id``); the child must be another organization of the
        partner account."""
        partner_id = partner_account(principal)
        child_id = request.child_organization_id
        await self._require_in_account(organization_id, partner_id)
        await self._require_in_account(child_id, partner_id)
        if organization_id != partner_id:
            # A customer's own connection is its own: its partner may not hand it to another one.
            raise Unprocessable(
                "only connections of the partner's owner organization can be shared; this one "
                "belongs to an organization the partner manages",
                key="not_owner_organization",
                metadata={"field": "org_id"},
            )
        if child_id == organization_id:
            raise Unprocessable(
                "child_organization_id is the organization that owns the connection; share it with "
                "another organization of the partner account",
                key="invalid_child_organization",
                metadata={"field": "child_organization_id"},
            )
        try:
            async with self._db.transaction() as session:
                # The owner organization holds no copies (they go to other organizations only),
                # so a parent found here is never a copy itself.
                parent = await self._connections.row(organization_id, connection_id, session=session)
                existing = await self._rows.copy_in(session, parent.id, child_id)
                if existing is not None:
                    raise _already_shared(existing.id)
                now = utcnow()
                copy = Connection(
                    id=str(uuid.uuid4()),
                    organization_id=child_id,
                    type_id=parent.type_id,
                    name=request.name or parent.name,
                    configuration={},
                    secrets=None,
                    created_by=principal.id,
                    updated_by=principal.id,
                    created_at=now,
                    updated_at=now,
                    parent_connection_id=parent.id,
                    parent=parent,
                )
                await self._rows.insert(session, copy)
        except IntegrityError:
            # Shared concurrently by another request, or the child deleted meanwhile.
            async with self._db.session() as session:
                raced = await self._rows.copy_in(session, connection_id, child_id)
            if raced is None:
                raise organization_not_found(child_id) from None
            raise _already_shared(raced.id) from None
        return self._connections.view(copy)

    async def copies(self, principal: Principal, connection_id: str) -> list[ConnectionView]:
        """The copies of a connection the caller's organization owns (404 for any other)."""
        parent = await self._connections.row(principal.organization_id, connection_id)
        return await self._views(parent)

    async def partner_copies(
        self, principal: Principal, organization_id: str, connection_id: str
    ) -> list[ConnectionView]:
        """The copies of a connection ``organization_id`` (of the caller's partner account) owns;
        404, never a hint, when the organization or the connection is not the caller's."""
        await self._require_in_account(organization_id, partner_account(principal))
        parent = await self._connections.row(organization_id, connection_id)
        return await self._views(parent)

    # -- helpers -------------------------------------------------------------------------------

    async def _views(self, parent: Connection) -> list[ConnectionView]:
        return [self._connections.view(row) for row in await self._rows.copies(parent.id)]

    async def _require_in_account(self, organization_id: str, partner_id: str) -> None:
        if not is_uuid(organization_id) or not await self._organizations.in_partner_account(
            organization_id, partner_id
        ):
            raise organization_not_found(organization_id)
