"""What the job rows need from an engine: enqueue inside the row's transaction, and a wake-up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


class Dispatcher(Protocol):
    async def enqueue(self, session: AsyncSession, jobs: Sequence[tuple[str, str]]) -> None:
        """Hand the ``(job id, job type)`` pairs to the engine inside ``session``'s transaction
        (it commits with the rows)."""

    def notify(self) -> None:
        """Called after such a transaction committed (a local wake-up; may do nothing)."""


class NoDispatch:
    """Until an engine is attached (e.g. in a CLI command that never submits jobs)."""

    async def enqueue(self, session: AsyncSession, jobs: Sequence[tuple[str, str]]) -> None:
        return None

    def notify(self) -> None:
        return None
