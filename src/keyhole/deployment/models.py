"""One row per running server or worker process, refreshed by its heartbeat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, func
from sqlalchemy.orm import Mapped, mapped_column

from keyhole.store.base import Base


class ProcessRecord(Base):
    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # "serve" or "worker"
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column()
    version: Mapped[str] = mapped_column(String(32))
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)  # the job queues it runs; empty: none
    started_at: Mapped[datetime] = mapped_column()
    # The process's own clock and the database's, written together: their difference is the
    # process's clock skew, which leases and expiries across processes depend on.
    reported_at: Mapped[datetime] = mapped_column()
    seen_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
