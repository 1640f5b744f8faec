"""Organizations of a partner account, and which organization a caller may manage.

A partner key manages its owner organization and the organizations it created (its children);
an administrator (an admin user's key or an organization key) manages its own organization only.
Organizations a caller may not manage are reported as not found, never as forbidden, so that
one partner cannot learn another's organizations exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.errors import Conflict, Forbidden
from keyhole.store.database import Database
from keyhole.tenancy.access import is_administrator, partner_account
from keyhole.tenancy.missing import is_uuid, organization_not_found
from keyhole.tenancy.models import Organization
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.repository import TenancyRepository
from keyhole.tenancy.schemas import OrganizationSettings, OrganizationView
from keyhole.vault import Vault
from keyhole.vault.rotation import row_aad


class OrganizationService:
    def __init__(self, database: Database, vault: Vault) -> None:
        self._db = database
        self._rows = TenancyRepository(database)
        self._vault = vault
        self._deletion_listeners: list[Callable[[str], None]] = []
        self._purges: list[Callable[[str], Awaitable[object]]] = []

    # -- reads ---------------------------------------------------------------------------------

    async def current(self, principal: Principal) -> OrganizationView:
        """The organization the caller's credential acts for."""
        async with self._db.session() as session:
            row = await self._rows.organization(session, principal.organization_id)
            if row is None:
                raise organization_not_found(principal.organization_id)
            return _view(row)

    async def list(self, principal: Principal) -> list[OrganizationView]:
        """The partner's owner organization first, then the ones it manages, oldest first."""
        async with self._db.session() as session:
            rows = await self._rows.partner_account(session, partner_account(principal))
        return [_view(row) for row in rows]

    async def get(self, principal: Principal, organization_id: str) -> OrganizationView:
        async with self._db.session() as session:
            return _view(await self.managed(session, principal, organization_id))

    async def managed(
        self, session: AsyncSession, principal: Principal, organization_id: str
    ) -> Organization:
        """The organization, when the caller may manage it (404 otherwise, 403 for a member of it)."""
        if not is_uuid(organization_id):
            raise organization_not_found(organization_id)
        row = await self._rows.organization(session, organization_id)
        if row is None:
            raise organization_not_found(organization_id)
        if principal.kind == "partner":
            partner_id = partner_account(principal)
            if partner_id in (row.id, row.partner_organization_id):
                return row
            raise organization_not_found(organization_id)
        if row.id != principal.organization_id:
            raise organization_not_found(organization_id)
        if not is_administrator(principal):
            raise Forbidden(
                "managing the organization's users and keys needs an organization key or the key "
                "of a user with the admin role",
                key="admin_required",
            )
        return row

    # -- writes (partner keys) -----------------------------------------------------------------

    async def create(self, principal: Principal, settings: OrganizationSettings) -> OrganizationView:
        partner_id = partner_account(principal)
        try:
            async with self._db.transaction() as session:
                await self._require_free_name(session, partner_id, settings.name, other_than=None)
                row = await self._rows.create_organization(
                    session, settings.name, partner_organization_id=partner_id
                )
                self._apply(row, settings)
        except IntegrityError:  # the same name, created concurrently
            raise _name_taken(settings.name) from None
        return _view(row)

    async def update(
        self, principal: Principal, organization_id: str, settings: OrganizationSettings
    ) -> OrganizationView:
        try:
            async with self._db.transaction() as session:
                row = await self.managed(session, principal, organization_id)
                await self._require_free_name(
                    session, partner_account(principal), settings.name, other_than=row.id
                )
                row.name = settings.name
                self._apply(row, settings)
        except IntegrityError:  # renamed concurrently to the same name
            raise _name_taken(settings.name) from None
        return _view(row)

    async def delete(self, principal: Principal, organization_id: str) -> None:
        """Delete a managed organization with its users, keys, connections (secrets included),
        auth configs, sessions, queries, jobs and stored bodies; copies it holds of other
        organizations' connections go with it, and copies others hold of its connections too."""
        async with self._db.session() as session:
            row = await self.managed(session, principal, organization_id)
            if row.id == partner_account(principal):
                raise Forbidden(
                    "a partner key cannot delete its own owner organization", key="owner_organization"
                )
        for purge in self._purges:
            await purge(organization_id)
        async with self._db.transaction() as session:
            doomed = await self._rows.organization(session, organization_id)
            if doomed is not None:
                await self._rows.delete_organization(session, doomed)
        for listener in self._deletion_listeners:
            listener(organization_id)

    def before_delete(self, purge: Callable[[str], Awaitable[object]]) -> None:
        """Run ``purge(organization_id)`` before an organization's rows go: for what lives outside
        the store (stored bodies in the blob store), found through rows the deletion removes."""
        self._purges.append(purge)

    def on_delete(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(organization_id)`` after an organization is deleted in this process
        (caches of its keys and connections drop their entries at once)."""
        self._deletion_listeners.append(listener)

    # -- helpers -------------------------------------------------------------------------------

    async def _require_free_name(
        self, session: AsyncSession, partner_id: str, name: str, *, other_than: str | None
    ) -> None:
        if await self._rows.name_taken_in_partner_account(session, partner_id, name, other_than=other_than):
            raise _name_taken(name)

    def _apply(self, row: Organization, settings: OrganizationSettings) -> None:
        row.sso_issuer = settings.sso_issuer
        row.sso_domain = settings.sso_domain
        row.sso_org_id = settings.sso_org_id
        row.sso_client_id = settings.sso_client_id
        row.sso_client_secret = (
            None
            if settings.sso_client_secret is None
            else self._vault.encrypt_json(
                settings.sso_client_secret, row_aad(Organization.__tablename__, row.id, "sso_client_secret")
            )
        )


def _name_taken(name: str) -> Conflict:
    return Conflict(
        "an organization of this partner account already has this name",
        key="organization_name_taken",
        metadata={"name": name[:200]},
    )


def _view(row: Organization) -> OrganizationView:
    return OrganizationView(
        id=row.id,
        name=row.name,
        partner_organization_id=row.partner_organization_id,
        sso_issuer=row.sso_issuer,
        sso_domain=row.sso_domain,
        sso_org_id=row.sso_org_id,
        sso_client_id=row.sso_client_id,
        sso_client_secret_set=row.sso_client_secret is not None,
        created_at=row.created_at,
    )
