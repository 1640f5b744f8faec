"""Metadata store: SQLAlchemy models, engine and migrations (SQLite embedded, PostgreSQL distributed)."""

from keyhole.store.base import Base, new_id, utcnow
from keyhole.store.database import Database

__all__ = ["Base", "Database", "new_id", "utcnow"]
