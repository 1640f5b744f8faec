"""An auth config row. ``credentials`` (e.g. an OAuth client secret) is stored only encrypted."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keyhole.store.base import Base, utcnow


class AuthConfig(Base):
    __tablename__ = "auth_configs"
    __encrypted_columns__: ClassVar[tuple[str, ...]] = ("credentials",)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    toolkit_slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    auth_scheme: Mapped[str] = mapped_column(String(32))
    credentials: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    tool_router_enabled: Mapped[bool] = mapped_column(default=True)
    tool_access_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
