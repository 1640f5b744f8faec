"""One module per database family: how to connect, stream, limit, cancel and report errors.

Each exposes a pool class with ``session(limits, tag)`` (an async context manager yielding a
``DatabaseSession`` whose statement carries ``tag`` where other connections see it),
``tagged()`` (the statements of other connections, found by tag: see ``queries/orphans.py``),
``describe_error(exc)`` (the database's message, scrubbed) and ``dispose()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from keyhole.errors import KeyholeError
from keyhole.queries.execution import DatabaseSession, QueryLimits
from keyhole.vault.scrub import Scrubber, scrub_message


async def end_transaction(
    connection: AsyncConnection,
    *,
    commit: Callable[[], Awaitable[Any]],
    rollback: Callable[[], Awaitable[Any]],
    keep: bool,
) -> None:
    """Commit when ``keep`` (a write that succeeded), else roll back. A connection whose
    transaction could not be ended must not go back to the pool; a failed commit is an error
    the caller must see, a failed rollback is not."""
    try:
        await (commit() if keep else rollback())
    except Exception:
        await connection.invalidate()
        if keep:
            raise


class TaggedStatements(Protocol):
    """Statements of other connections to the same database, found by their attempt tag."""

    async def count(self, tags: Sequence[str]) -> int:
        """How many statements (PostgreSQL: transactions) carrying one of ``tags`` are there."""

    async def cancel(self, tags: Sequence[str]) -> int:
        """Ask each of them to stop; returns how many were found."""

    async def terminate(self, tags: Sequence[str]) -> int:
        """Close their connections; returns how many were found."""


class DatabasePool(Protocol):
    async def dispose(self) -> None: ...

    def session(self, limits: QueryLimits, tag: str) -> AbstractAsyncContextManager[DatabaseSession]: ...

    def tagged(self) -> AbstractAsyncContextManager[TaggedStatements]: ...

    def describe_error(self, error: BaseException) -> str: ...


def unwrap(error: BaseException) -> BaseException:
    """The driver's own exception behind SQLAlchemy's wrappers."""
    original = getattr(error, "orig", None)
    if isinstance(original, BaseException):
        return original
    return error


def describe_connect_error(error: BaseException, scrubber: Scrubber, timeout: float) -> str | None:
    """A clear message for failures to connect, or None when the error is something else."""
    error = unwrap(error)
    if isinstance(error, KeyholeError):  # egress refused the host
        return scrub_message(f"the database host is not allowed: {error.message}", scrubber)
    if isinstance(error, TimeoutError):
        return f"could not connect to the database: no answer within {timeout:g} s (connect timeout)"
    if isinstance(error, OSError):
        detail = error.strerror or str(error) or type(error).__name__
        return scrub_message(f"could not connect to the database: {detail}", scrubber)
    return None
