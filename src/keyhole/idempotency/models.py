"""One row per (principal, Idempotency-Key): the fixed outcome of the first request."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keyhole.store.base import Base, new_id, utcnow


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __encrypted_columns__: ClassVar[tuple[str, ...]] = ("response_body",)
    __table_args__ = (
        UniqueConstraint("organization_id", "principal_id", "key", name="uq_idempotency_keys_principal_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    principal_id: Mapped[str] = mapped_column(String(64))  # Principal.id: a user id or org:<id>
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path, query and body
    state: Mapped[str] = mapped_column(String(16))  # in_progress | completed
    lock_token: Mapped[str | None] = mapped_column(String(36))  # the in-progress owner
    locked_until: Mapped[datetime | None]
    status: Mapped[int | None]
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSON)
    response_body: Mapped[str | None] = mapped_column(Text)  # vault ciphertext (may hold upstream data)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
