"""Typed inputs and outputs of the tenancy services (wire shapes live in the dialects)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class OrganizationSettings:
    """An organization's name and SSO settings, replaced in full on update. SSO settings are
    stored and returned (the client secret only as "set") but not acted on."""

    name: str
    sso_issuer: str | None = None
    sso_domain: str | None = None
    sso_org_id: str | None = None
    sso_client_id: str | None = None
    sso_client_secret: str | None = None


@dataclass(frozen=True, slots=True)
class OrganizationView:
    id: str
    name: str
    partner_organization_id: str | None
    sso_issuer: str | None
    sso_domain: str | None
    sso_org_id: str | None
    sso_client_id: str | None
    sso_client_secret_set: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserRequest:
    """A user's email and role as a caller sent them; the service checks and normalises them.
    ``role`` and ``role_ids`` are the two spellings of one role (at most one may be given)."""

    email: str | None
    role: str | None = None
    role_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class UserView:
    id: str
    organization_id: str
    email: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IdentityView:
    """Who a credential is: a user (``user_id``, ``email``, ``role`` set), an organization key
    or a partner key, and the organization it acts for."""

    kind: str  # "user" | "org" | "partner"
    organization_id: str
    organization_name: str
    user_id: str | None
    email: str | None
    role: str | None
