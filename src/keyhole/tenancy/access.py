"""What each kind of credential may reach: the one gate every surface passes a caller through.

- ``RESOURCES``: connections, the proxy, queries, jobs, Composio (user and organization keys).
- ``IDENTITY``: who the caller is and its organization (every key).
- ``ADMINISTRATION``: the caller's own organization's audit log (admin users and organization
  keys).
- ``MANAGEMENT``: an organization's users and keys, beyond a member reading its own organization's
  users (its administrators, or a partner key of the partner account that manages it:
  ``OrganizationService.managed`` checks which).
- ``PARTNER``: organizations and shared connections of a partner account (partner keys).
"""

from __future__ import annotations

from enum import StrEnum

from keyhole.errors import Forbidden
from keyhole.tenancy.principal import Principal


class Access(StrEnum):
    RESOURCES = "resources"
    IDENTITY = "identity"
    ADMINISTRATION = "administration"
    MANAGEMENT = "management"
    PARTNER = "partner"


def is_administrator(principal: Principal) -> bool:
    """An organization key, or a user key whose user has the admin role."""
    return principal.kind == "org" or (principal.kind == "user" and principal.role == "admin")


def require(principal: Principal, access: Access) -> None:
    """Refuse a caller whose credential kind may not reach ``access`` (403, saying which may)."""
    if access is Access.IDENTITY:
        return
    if principal.kind == "partner":
        if access in (Access.PARTNER, Access.MANAGEMENT):
            return
        raise Forbidden(
            "a partner key manages organizations, their users and keys, and shared connections "
            "only; mint a user key for the organization (POST /api/organizations/{org_id}/users/"
            "{user_id}/keys) and call this endpoint with it",
            key="partner_key_not_allowed",
        )
    if access is Access.RESOURCES:
        return
    if access is Access.PARTNER:
        raise Forbidden("this endpoint needs a partner key", key="partner_key_required")
    if not is_administrator(principal):
        raise Forbidden(
            "this endpoint needs an organization key or the key of a user with the admin role",
            key="admin_required",
        )


def partner_account(principal: Principal) -> str:
    """The owner organization of the caller's partner account (403 for any other credential)."""
    if principal.kind != "partner" or principal.partner_id is None:
        raise Forbidden("this endpoint needs a partner key", key="partner_key_required")
    return principal.partner_id
