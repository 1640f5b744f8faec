"""Organizations, their users and API keys (stored only as hashes).

A partner account is an owner organization holding partner keys; the organizations it creates
name it in ``partner_organization_id``. Names are unique within one partner account.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keyhole.store.base import Base, new_id, utcnow


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        UniqueConstraint("partner_organization_id", "name", name="uq_organizations_partner_name"),
    )
    __encrypted_columns__: ClassVar[tuple[str, ...]] = ("sso_client_secret",)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), index=True)
    # The partner owner organization that manages this one; None for an owner or a standalone one.
    partner_organization_id: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id"), index=True, default=None
    )
    # Stored and returned, not acted on: Keyhole signs callers in with API keys only.
    sso_issuer: Mapped[str | None] = mapped_column(String(2048), default=None)
    sso_domain: Mapped[str | None] = mapped_column(String(255), default=None)
    sso_org_id: Mapped[str | None] = mapped_column(String(255), default=None)
    sso_client_id: Mapped[str | None] = mapped_column(String(255), default=None)
    sso_client_secret: Mapped[str | None] = mapped_column(Text, default=None)  # encrypted, write-only
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("organization_id", "email", name="uq_users_organization_email"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "user" | "org" | "partner"
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class BrowserSession(Base):
    """A web console sign-in: only the hash of the cookie's token is stored, and the session
    lives no longer than its key (revoked or deleted, the session ends with it)."""

    __tablename__ = "browser_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # the idle purge reads it
    expires_at: Mapped[datetime] = mapped_column(index=True)
