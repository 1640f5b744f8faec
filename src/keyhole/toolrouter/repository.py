"""Every statement on ``tool_router_sessions``, scoped to one organization."""

from __future__ import annotations

from keyhole.store.database import Database
from keyhole.toolrouter.models import ToolRouterSession


class SessionRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, organization_id: str, session_id: str) -> ToolRouterSession | None:
        # Ids are at most 64 characters: a longer one names nothing and costs no round trip.
        row = None
        if len(session_id) <= 64:
            async with self._db.session() as session:
                row = await session.get(ToolRouterSession, session_id)
        if row is None or row.organization_id != organization_id:
            return None
        return row

    async def add(self, row: ToolRouterSession) -> None:
        async with self._db.transaction() as session:
            session.add(row)
