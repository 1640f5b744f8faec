"""A connection: a typed configuration whose secret fields live only in an encrypted column."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, literal_column
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keyhole.store.base import Base, new_id, utcnow


class Connection(Base):
    __tablename__ = "connections"
    __encrypted_columns__: ClassVar[tuple[str, ...]] = ("secrets",)
    __table_args__ = (
        UniqueConstraint(
            "parent_connection_id", "organization_id", name="uq_connections_parent_organization"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    type_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    configuration: Mapped[dict[str, Any]] = mapped_column(JSON)
    secrets: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="healthy")
    status_error: Mapped[str | None] = mapped_column(Text)
    proxy_enabled: Mapped[bool] = mapped_column(default=True)
    healthcheck_interval: Mapped[str | None] = mapped_column(String(32))
    policies: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str | None] = mapped_column(String(64))  # Principal.id
    updated_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Grows with every write to the row, by any process (writes of its OAuth tokens touch the row
    # too). What a process keeps longer than one cache TTL about the connection (an OAuth access
    # token, a refused OAuth client) is used only while the version it was found at is still the
    # one of the cached target, which is re-read every ``KEYHOLE_CACHE_TTL_SECONDS``.
    version: Mapped[int] = mapped_column(
        default=0, server_default="0", onupdate=literal_column("version") + 1
    )
    # The Composio view of the same connection (a "connected account"); all null when created
    # through the Polytomic dialect. Disabling an account clears ``proxy_enabled``.
    account_user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    account_alias: Mapped[str | None] = mapped_column(String(200))
    account_status: Mapped[str | None] = mapped_column(String(16))
    account_status_reason: Mapped[str | None] = mapped_column(Text)
    auth_config_id: Mapped[str | None] = mapped_column(String(64))
    auth_scheme: Mapped[str | None] = mapped_column(String(32))
    # A shared copy (Polytomic "shared connection") in another organization of the same partner
    # account: it holds no configuration or secret of its own and uses its parent's, read through
    # ``parent`` (loaded with the row, one level deep). Deleting the parent deletes its copies.
    parent_connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True, default=None
    )
    # ``join_depth``: without it a self-referential eager load stops before its first level.
    parent: Mapped[Connection | None] = relationship(
        remote_side=[id], lazy="joined", innerjoin=False, join_depth=1
    )

    @property
    def credential_row(self) -> Connection:
        """The row whose configuration, secret, status and proxy setting this one uses: a shared
        copy's parent (loaded with it), any other connection itself (whose ``parent`` is not read:
        a row being created has no loaded attribute to read)."""
        if self.parent_connection_id is None or self.parent is None:
            return self
        return self.parent
