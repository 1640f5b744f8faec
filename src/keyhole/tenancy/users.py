"""The users of an organization: listing, creation, role changes and deletion.

Any key of an organization may read its users; changing them needs the right to manage the
organization (``OrganizationService.managed``: its administrators, or the partner account that
manages it). A user has one role, ``admin`` or ``member``; emails are unique per organization
in their normalised spelling. Role changes and deletions take effect in this process at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.errors import Conflict, Unprocessable
from keyhole.store.database import Database
from keyhole.tenancy.emails import normalised_email
from keyhole.tenancy.missing import is_uuid, user_not_found
from keyhole.tenancy.models import User
from keyhole.tenancy.organizations import OrganizationService
from keyhole.tenancy.principal import ROLES, Principal, Role
from keyhole.tenancy.repository import TenancyRepository
from keyhole.tenancy.schemas import UserRequest, UserView
from keyhole.tenancy.service import TenancyService

DEFAULT_ROLE: Role = "member"


def requested_role(role: str | None, role_ids: Sequence[str] | None) -> Role | None:
    """The role a request names through ``role`` or a one-entry ``role_ids`` (None: neither)."""
    if role is not None and role_ids is not None:
        raise Unprocessable(
            "send either role or role_ids, not both", key="role_conflict", metadata={"roles": list(ROLES)}
        )
    if role_ids is not None:
        if len(role_ids) != 1:
            raise _invalid_role("role_ids must hold exactly one role: a user has one role")
        role = role_ids[0]
    if role is None:
        return None
    for known in ROLES:
        if role == known:
            return known
    raise _invalid_role("unknown role")


def _invalid_role(reason: str) -> Unprocessable:
    roles = ", ".join(ROLES)
    return Unprocessable(
        f"{reason}; the roles are: {roles}", key="invalid_role", metadata={"roles": list(ROLES)}
    )


class UserService:
    def __init__(
        self, database: Database, organizations: OrganizationService, tenancy: TenancyService
    ) -> None:
        self._db = database
        self._rows = TenancyRepository(database)
        self._organizations = organizations
        self._tenancy = tenancy

    # -- the caller's own organization (any of its keys) ---------------------------------------

    async def list_current(self, principal: Principal) -> list[UserView]:
        async with self._db.session() as session:
            rows = await self._rows.users(session, principal.organization_id)
        return [_view(row) for row in rows]

    async def get_current(self, principal: Principal, user_id: str) -> UserView:
        async with self._db.session() as session:
            return _view(await self._user(session, principal.organization_id, user_id))

    # -- an organization the caller manages ------------------------------------------------------

    async def list(self, principal: Principal, organization_id: str) -> list[UserView]:
        async with self._db.session() as session:
            organization = await self._organizations.managed(session, principal, organization_id)
            rows = await self._rows.users(session, organization.id)
        return [_view(row) for row in rows]

    async def get(self, principal: Principal, organization_id: str, user_id: str) -> UserView:
        async with self._db.session() as session:
            organization = await self._organizations.managed(session, principal, organization_id)
            return _view(await self._user(session, organization.id, user_id))

    async def create(self, principal: Principal, organization_id: str, request: UserRequest) -> UserView:
        """409 ``user_email_taken`` when a user of the organization has the email already."""
        email = normalised_email(request.email or "")
        role = requested_role(request.role, request.role_ids) or DEFAULT_ROLE
        try:
            async with self._db.transaction() as session:
                organization = await self._organizations.managed(session, principal, organization_id)
                if await self._rows.email_taken(session, organization.id, email):
                    raise _email_taken(email)
                row = await self._rows.create_user(session, organization.id, email, role=role)
        except IntegrityError:
            # Another request created the same email between the check and the insert.
            raise _email_taken(email) from None
        return _view(row)

    async def update(
        self, principal: Principal, organization_id: str, user_id: str, request: UserRequest
    ) -> UserView:
        """Change the user's role (when one is named); the email, when sent, is checked but not
        applied: profile fields are not changed here."""
        if request.email is not None:
            normalised_email(request.email)
        role = requested_role(request.role, request.role_ids)
        async with self._db.transaction() as session:
            organization = await self._organizations.managed(session, principal, organization_id)
            row = await self._user(session, organization.id, user_id)
            previous = row.role
            if role is not None:
                row.role = role
        if row.role != previous:
            self._tenancy.forget_user(row.id)
        return _view(row)

    async def delete(self, principal: Principal, organization_id: str, user_id: str) -> UserView:
        """Delete the user and its keys (which stop working in this process at once); a caller
        cannot delete its own user (409 ``cannot_delete_self``)."""
        async with self._db.transaction() as session:
            organization = await self._organizations.managed(session, principal, organization_id)
            row = await self._user(session, organization.id, user_id)
            if row.id == principal.user_id:
                raise Conflict(
                    "a key cannot delete its own user; use another administrator's key or an "
                    "organization key",
                    key="cannot_delete_self",
                )
            view = _view(row)
            await self._rows.delete_user(session, row)
        self._tenancy.forget_user(view.id)
        return view

    async def _user(self, session: AsyncSession, organization_id: str, user_id: str) -> User:
        row = await self._rows.user(session, organization_id, user_id) if is_uuid(user_id) else None
        if row is None:
            raise user_not_found(user_id)
        return row


def _email_taken(email: str) -> Conflict:
    return Conflict(
        "a user of this organization already has this email",
        key="user_email_taken",
        metadata={"email": email},
    )


def _view(row: User) -> UserView:
    return UserView(row.id, row.organization_id, row.email, row.role, row.created_at)
