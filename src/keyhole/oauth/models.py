"""OAuth2 rows: a connection's tokens (encrypted) and pending connect flows (hashed state)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keyhole.store.base import Base, new_id, utcnow

TOKENS_ACTIVE = "active"
TOKENS_REAUTHORIZE = "reauthorization_required"


class OAuthTokens(Base):
    """One row per OAuth2 connection. ``tokens`` is one ciphertext holding the access and refresh
    tokens, so a rotated refresh token is replaced in the same write as the access token.
    ``version`` grows with every write (compare-and-swap); ``lock_*`` is the database lease used
    as the cross-process refresh lock when no Redis is configured."""

    __tablename__ = "oauth_tokens"
    __encrypted_columns__: ClassVar[tuple[str, ...]] = ("tokens",)

    id: Mapped[str] = mapped_column(  # the connection's id
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[str] = mapped_column(String(36), index=True)
    tokens: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(32), default=TOKENS_ACTIVE)
    error: Mapped[str | None] = mapped_column(Text)
    lock_token: Mapped[str | None] = mapped_column(String(64))
    lock_until: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthFlow(Base):
    """A pending authorization-code flow. The connect token and the ``state`` are stored as
    SHA-256 hashes only; the PKCE verifier is encrypted. Single use: ``used_at``."""

    __tablename__ = "oauth_flows"
    __encrypted_columns__: ClassVar[tuple[str, ...]] = ("verifier",)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(String(36), index=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    verifier: Mapped[str] = mapped_column(Text)
    redirect_url: Mapped[str] = mapped_column(Text)
    callback_url: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200))
    dark: Mapped[bool] = mapped_column(default=False)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
