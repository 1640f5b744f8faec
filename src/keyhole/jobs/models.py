"""The job row: the one source of truth about a job. Engines only decide who runs it when."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keyhole.store.base import Base, new_id, utcnow


class Job(Base):
    __tablename__ = "jobs"
    __encrypted_columns__: ClassVar[tuple[str, ...]] = ("payload",)
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_status_lease", "status", "lease_until"),
        # An owner's listing of one type, newest first and paged by (created_at, id).
        Index("ix_jobs_owner_type_created", "organization_id", "owner_id", "type", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[str] = mapped_column(String(64))  # Principal.id of the submitter
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # created | running | done | failed
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int]
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    payload: Mapped[str] = mapped_column(Text)  # vault ciphertext of the job's input
    lease_until: Mapped[datetime | None]
    worker_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime] = mapped_column(index=True)
