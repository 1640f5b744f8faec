"""Job engines: who runs a job, and when. The job row stays the truth in both."""

from __future__ import annotations

from typing import Protocol

from keyhole.jobs.dispatch import Dispatcher


class JobEngine(Dispatcher, Protocol):
    name: str
    queues: tuple[str, ...]  # every queue this engine runs (see keyhole.jobs.queues)

    async def prepare(self) -> None:
        """One-time set-up before the first job is submitted (e.g. the queue's schema)."""

    def start(self) -> None:
        """Start in-process work (the embedded worker); call inside the running event loop."""

    async def stop(self) -> None: ...


__all__ = ["JobEngine"]
