"""One row per proxied call. Paths are stored with credential query values redacted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keyhole.store.base import Base


class ProxyCall(Base):
    __tablename__ = "proxy_calls"
    __table_args__ = (
        # Organization first, so that every per-connection statement (which names both) seeks it.
        Index(
            "ix_proxy_calls_organization_connection_created", "organization_id", "connection_id", "created_at"
        ),
        Index("ix_proxy_calls_organization_created", "organization_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(36))
    connection_id: Mapped[str] = mapped_column(String(36))
    # Set when the call went through a shared copy: the connection whose credential it used.
    parent_connection_id: Mapped[str | None] = mapped_column(String(36), default=None)
    principal_id: Mapped[str] = mapped_column(String(64))  # Principal.id: a user id, org:<id>, partner:<id>
    dialect: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    upstream_status: Mapped[int | None]
    latency_ms: Mapped[int]
    bytes_in: Mapped[int] = mapped_column(BigInteger)
    bytes_out: Mapped[int] = mapped_column(BigInteger)
    truncated: Mapped[bool]
    outcome: Mapped[str] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
