"""The query row: the one source of truth about a query's state and where its pages are."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keyhole.store.base import Base, new_id, utcnow


class Query(Base):
    __tablename__ = "queries"
    __table_args__ = (
        Index("ix_queries_status_expires", "status", "expires_at"),
        # An owner's listing, newest first (``QueryRepository.list_owned``).
        Index("ix_queries_owner_created", "organization_id", "owner_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    # No foreign key: results stay readable (until they expire) after the connection is deleted.
    connection_id: Mapped[str] = mapped_column(String(36), index=True)
    owner_id: Mapped[str] = mapped_column(String(64))  # Principal.id of the submitter
    job_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))  # created | running | done | failed
    error: Mapped[str | None] = mapped_column(Text)
    error_key: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[list[str] | None] = mapped_column(JSON)
    field_kinds: Mapped[list[str] | None] = mapped_column(JSON)  # queries/kinds.py, one per field
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    byte_count: Mapped[int] = mapped_column(BigInteger, default=0)
    page_count: Mapped[int] = mapped_column(default=0)
    # Arrow batches stored beside the pages by a columnar run (``queries/stored_columns.py``)
    column_batches: Mapped[int] = mapped_column(default=0, server_default="0")
    truncated: Mapped[bool] = mapped_column(default=False)
    attempt: Mapped[int] = mapped_column(default=0)  # runs started; pages live under it
    read_only: Mapped[bool] = mapped_column(default=True)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    purged_at: Mapped[datetime | None]  # pages deleted; the row answers 410 until it goes too
