"""The execution core: one statement, streamed from the database into pages, with its limits.

A dialect (``queries/dialects/``) opens a ``DatabaseSession``: one connection inside one
transaction whose read-only mode and statement timeout the *database* enforces. The core
fetches rows in batches sized to about ``BATCH_TARGET_BYTES`` of JSON, feeds them to a
``PageBuilder`` and, through a watcher, turns a cancel request or the deadline into a cancel
at the database (``DatabaseSession.cancel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import pyarrow as pa

from keyhole.errors import KeyholeError
from keyhole.queries.columnar import BatchEncoder, ColumnarUnavailable
from keyhole.queries.kinds import TEXT
from keyhole.queries.pages import PageBuilder, PageLimits, PageSink, Progress, ResultSummary
from keyhole.queries.stored_columns import ColumnSink
from keyhole.queries.values import unique_names

BATCH_TARGET_BYTES = 512 * 1024  # measured: smaller batches pipeline worse, larger ones lose cache locality
FIRST_BATCH_ROWS = 100
MAX_BATCH_ROWS = 2500
CANCELLED = "cancelled"
READ_AHEAD_BATCHES = 2  # columnar batches read while one is encoded (each about 4 MiB)


# -- limits -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """A connection's ``configuration.query`` object (defaults as in the type catalog)."""

    statement_timeout_ms: int = 300_000
    max_rows: int = 1_000_000
    max_bytes: int = 268_435_456
    read_only: bool = True

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, Any]) -> QueryLimits:
        raw = configuration.get("query") or {}
        defaults = cls()
        return cls(
            statement_timeout_ms=int(raw.get("statement_timeout_ms", defaults.statement_timeout_ms)),
            max_rows=int(raw.get("max_rows", defaults.max_rows)),
            max_bytes=int(raw.get("max_bytes", defaults.max_bytes)),
            read_only=bool(raw.get("read_only", defaults.read_only)),
        )

    @property
    def timeout_seconds(self) -> float:
        return self.statement_timeout_ms / 1000


COLUMNAR_MIN_ROWS = 100_000
COLUMNAR_MIN_BYTES = 64 * 1024 * 1024


def takes_columns(limits: QueryLimits) -> bool:
    """Whether a run under ``limits`` may take the columnar path: only a read-only one (a fallback
    runs the statement again), and only one whose limits are far above a batch (the columnar path
    reads a whole batch before the limits are looked at; a slow query stopped at 50 rows should not
    wait for a batch's worth)."""
    return (
        limits.read_only and limits.max_rows >= COLUMNAR_MIN_ROWS and limits.max_bytes >= COLUMNAR_MIN_BYTES
    )


# -- what a dialect provides ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_name: str
    kind: str = TEXT  # see ``queries/kinds.py``


class Statement(Protocol):
    @property
    def columns(self) -> Sequence[Column]: ...

    async def fetch(self, size: int) -> Sequence[Sequence[Any]]:
        """Up to ``size`` JSON-ready rows; empty once the result is exhausted."""


@runtime_checkable
class ColumnarStatement(Protocol):
    """A statement whose rows arrive as Arrow record batches (``queries/columnar.py``)."""

    @property
    def columns(self) -> Sequence[Column]: ...

    @property
    def schema(self) -> pa.Schema: ...

    async def fetch_batch(self) -> pa.RecordBatch | None:
        """The next batch; None once the result is exhausted."""

    async def close(self) -> None:
        """Stop reading (the result may be left unread) and let go of what the statement holds."""


class DatabaseSession(Protocol):
    @property
    def timeout_grace(self) -> float:
        """Seconds Keyhole waits past the statement timeout before cancelling itself: the
        database's own timeout should fire first, with its own message. Zero where Keyhole is
        the enforcer."""

    async def execute(self, sql: str, *, columnar: bool = True) -> Statement | ColumnarStatement:
        """Run ``sql``; rows are then read with ``Statement.fetch``, or as Arrow batches when the
        session can and ``columnar`` allows it (a ``ColumnarStatement``)."""

    async def cancel(self) -> None:
        """Stop the running statement at the database (safe to call at any time, from the loop)."""

    def succeed(self) -> None:
        """Mark the run successful: a read-write session commits instead of rolling back."""

    def abandon(self) -> None:
        """The result was not read to its end: do not hand this connection back as it is."""


SessionOpener = Callable[[], AbstractAsyncContextManager[DatabaseSession]]


# -- failures ---------------------------------------------------------------------------------


class QueryFailed(KeyholeError):
    """The query ended ``failed``; ``message`` is what the caller sees in ``error``."""

    status: ClassVar[int] = 422
    default_key: ClassVar[str] = "query_failed"


# -- control of one run -----------------------------------------------------------------------


class Control:
    """Lets other coroutines of this process cancel a run (DELETE, expiry, shutdown)."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.reason: str | None = None

    def cancel(self, reason: str = CANCELLED) -> None:
        if self.reason is None:
            self.reason = reason
        self.requested.set()


CancelCheck = Callable[[], Awaitable[bool]]


async def _watch(
    session: DatabaseSession,
    control: Control,
    limits: QueryLimits,
    *,
    poll_seconds: float,
    check: CancelCheck | None,
) -> None:
    """Turn a cancel request, a cancel seen in the store, or the deadline into a database cancel."""
    deadline = time.monotonic() + limits.timeout_seconds + session.timeout_grace
    while not control.requested.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            control.cancel("timeout")
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(control.requested.wait(), min(poll_seconds, remaining))
        if not control.requested.is_set() and check is not None and await check():
            control.cancel(CANCELLED)
    # Again until the statement ends (this task is cancelled then): a cancel that reaches the
    # database before the statement does is lost (SQLite's interrupt() stops only what runs).
    while True:
        await session.cancel()
        await asyncio.sleep(poll_seconds)


def _batch_size(builder: PageBuilder) -> int:
    """About ``BATCH_TARGET_BYTES`` of JSON, judged by the rows so far."""
    if builder.count == 0:
        return FIRST_BATCH_ROWS
    average = max(1, builder.bytes // builder.count)
    return max(1, min(MAX_BATCH_ROWS, BATCH_TARGET_BYTES // average))


async def run_statement(
    open_session: SessionOpener,
    sql: str,
    sink: PageSink,
    *,
    limits: QueryLimits,
    page_rows: int,
    page_bytes: int,
    control: Control,
    describe_error: Callable[[BaseException], str],
    cancel_poll_seconds: float = 1.0,
    cancel_check: CancelCheck | None = None,
    progress: Progress | None = None,
    columns: ColumnSink | None = None,
) -> ResultSummary:
    """Execute ``sql`` and stream its rows into ``sink``; raise ``QueryFailed`` on any failure."""
    builder: PageBuilder | None = None
    try:
        async with open_session() as session:
            watcher = asyncio.create_task(
                _watch(session, control, limits, poll_seconds=cancel_poll_seconds, check=cancel_check),
                name="query-watch",
            )
            try:
                if control.reason is not None:
                    raise QueryFailed(CANCELLED, key=CANCELLED)
                statement = await session.execute(sql)
                names = unique_names(column.name for column in statement.columns)

                def new_builder() -> PageBuilder:
                    return PageBuilder(
                        sink,
                        names,
                        PageLimits(page_rows, page_bytes, limits.max_rows, limits.max_bytes),
                        kinds=[column.kind for column in statement.columns],
                        progress=progress,
                    )

                builder = new_builder()
                if isinstance(statement, ColumnarStatement):
                    rerun = False
                    try:
                        await _stream_columns(statement, names, builder, control, columns)
                    except ColumnarUnavailable:
                        rerun = True
                    finally:
                        await statement.close()
                    if rerun:
                        # A value only the row path writes exactly: the same statement again on
                        # it (columnar statements are read-only, so running it twice is safe).
                        await builder.abort()
                        await _discard(columns)
                        statement = await session.execute(sql, columnar=False)
                        builder = new_builder()
                if not isinstance(statement, ColumnarStatement) and names:
                    await _stream(statement, builder, control)
                if control.reason is not None:
                    raise QueryFailed(CANCELLED, key=CANCELLED)
                summary = await builder.finish()
                if isinstance(statement, ColumnarStatement):
                    stored = 0
                    if columns is not None:
                        await columns.finish()
                        stored = columns.count
                    summary = dataclasses.replace(summary, columnar=True, column_batches=stored)
                if summary.truncated:
                    session.abandon()  # rows are left unread
                session.succeed()
                return summary
            except BaseException:
                session.abandon()
                raise
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
    except QueryFailed:
        await _abort(builder)
        await _discard(columns)
        if control.reason is not None:
            raise _stopped(control.reason, limits) from None
        raise
    except asyncio.CancelledError:
        await _abort(builder)
        await _discard(columns)
        raise
    except Exception as error:
        await _abort(builder)
        await _discard(columns)
        if control.reason is not None:
            raise _stopped(control.reason, limits) from None
        raise QueryFailed(describe_error(error), key="query_failed") from None


async def _stream(statement: Statement, builder: PageBuilder, control: Control) -> None:
    """Fetch batch k+1 while batch k is encoded, so that the database (or the driver's thread)
    works while this loop does."""
    fetching: asyncio.Task[Sequence[Sequence[Any]]] | None = asyncio.ensure_future(
        statement.fetch(FIRST_BATCH_ROWS)
    )
    try:
        while fetching is not None and control.reason is None:
            rows = await fetching
            fetching = None
            if not rows:
                return
            remaining = builder.max_rows - builder.count - len(rows)
            if remaining >= 0:
                # Past max_rows, one more row is enough to tell whether the result was cut.
                size = min(_batch_size(builder), remaining + 1)
                fetching = asyncio.ensure_future(statement.fetch(size))
                await asyncio.sleep(0)  # let the fetch send its request before encoding starts
            if not await builder.add(rows):
                return
    finally:
        if fetching is not None:
            # Never leave a fetch running on a connection that is about to be closed or reused.
            await asyncio.gather(fetching, return_exceptions=True)


async def _stream_columns(
    statement: ColumnarStatement,
    names: list[str],
    builder: PageBuilder,
    control: Control,
    columns: ColumnSink | None,
) -> None:
    """Encode each batch (in a thread: the kernels release the GIL, and the event loop keeps
    serving meanwhile) while the next ones are read: the database never waits for the encoder."""
    encoder = BatchEncoder(names, statement.schema)
    queue: asyncio.Queue[pa.RecordBatch | None] = asyncio.Queue(READ_AHEAD_BATCHES)
    stop = asyncio.Event()
    reader = asyncio.ensure_future(_read_ahead(statement, queue, stop, builder.max_rows))
    try:
        while control.reason is None:
            batch = await _next_batch(queue, reader)
            if batch is None:
                return
            if not batch.num_rows:
                continue
            before = builder.count
            more = await builder.add_encoded(await asyncio.to_thread(encoder.encode, batch))
            if columns is not None and builder.count > before:  # the rows the pages hold
                await columns.write(batch.slice(0, builder.count - before))
            if not more:
                return
    finally:
        # Never leave a read running on a statement about to be closed: let it end.
        stop.set()
        while not reader.done():
            while not queue.empty():
                queue.get_nowait()
            await asyncio.wait({reader}, timeout=0.05)
        if not reader.cancelled():
            reader.exception()  # retrieved: the outcome is the consumer's


async def _read_ahead(
    statement: ColumnarStatement,
    queue: asyncio.Queue[pa.RecordBatch | None],
    stop: asyncio.Event,
    max_rows: int,
) -> None:
    """Batches back to back into ``queue``, then None; past ``max_rows`` rows no more are needed."""
    rows = 0
    while not stop.is_set() and rows <= max_rows:
        batch = await statement.fetch_batch()
        await queue.put(batch)
        if batch is None:
            return
        rows += batch.num_rows
    await queue.put(None)


async def _next_batch(
    queue: asyncio.Queue[pa.RecordBatch | None], reader: asyncio.Future[None]
) -> pa.RecordBatch | None:
    """The next batch read ahead, or the reader's failure."""
    if not queue.empty():
        return queue.get_nowait()
    getting = asyncio.ensure_future(queue.get())
    await asyncio.wait({getting, reader}, return_when=asyncio.FIRST_COMPLETED)
    if getting.done():
        return getting.result()
    getting.cancel()
    reader.result()  # raises what stopped the reader
    return None


async def _discard(columns: ColumnSink | None) -> None:
    if columns is not None:
        with contextlib.suppress(Exception):
            await columns.discard()


async def _abort(builder: PageBuilder | None) -> None:
    if builder is not None:
        with contextlib.suppress(Exception):
            await builder.abort()


def _stopped(reason: str, limits: QueryLimits) -> QueryFailed:
    if reason == "timeout":
        return QueryFailed(
            f"statement timeout: the query ran longer than {limits.statement_timeout_ms} ms "
            "(the connection's query.statement_timeout_ms) and was cancelled at the database",
            key="statement_timeout",
        )
    if reason == "expired":
        return QueryFailed("cancelled: the query's results expired before it finished", key=CANCELLED)
    if reason == "shutdown":
        return QueryFailed("cancelled: the server shut down while the query ran", key=CANCELLED)
    return QueryFailed(CANCELLED, key=CANCELLED)
