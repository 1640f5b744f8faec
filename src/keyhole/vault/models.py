"""A key check per master key id: a known value sealed under that key when it first encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keyhole.store.base import Base, utcnow


class MasterKeyCheck(Base):
    __tablename__ = "master_key_checks"

    kid: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
