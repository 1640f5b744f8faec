"""SQLite and DuckDB files under ``KEYHOLE_SQL_FILE_ROOT``, read on a thread of their own.

Both drivers are synchronous, so each session owns one thread that opens the file, runs the
statement and hands rows over ``fetchmany(n)`` at a time; ``interrupt()`` (thread-safe in
both) is how a cancel or the deadline reaches the database engine. A pool here is a bound on
concurrent sessions per connection: opening a file is cheap, a connection per run is simpler
than sharing one across threads.

* **SQLite**: ``file:…?mode=ro`` plus ``PRAGMA query_only`` when read-only (``mode=rw``
  otherwise: a missing file is an error, never created); no ``ATTACH`` (``SQLITE_LIMIT_ATTACHED``
  is 0, which also stops ``VACUUM INTO``, so no other file of the server is read or written);
  the statement timeout is Keyhole's deadline calling ``interrupt()``, with a progress handler
  inside the engine as the backstop.
* **DuckDB**: ``read_only=True`` when read-only, and always ``enable_external_access = false``
  (no ``read_csv('/etc/…')``, ``COPY … TO``, ``ATTACH`` or extension loading); the timeout is
  Keyhole's deadline calling ``interrupt()``.
* **Orphans**: none. The database engine runs inside the Keyhole process, so a statement
  never outlives the worker that ran it: attempt tags are not needed and nothing is found.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pyarrow as pa

from keyhole.databases.file_paths import resolve_sql_file
from keyhole.errors import KeyholeError
from keyhole.queries.columnar import PLAIN_DECIMAL_SCALE
from keyhole.queries.execution import Column, QueryLimits, takes_columns
from keyhole.queries.kinds import kind_of
from keyhole.queries.values import Converter, duckdb_converter, sqlite_row
from keyhole.vault.scrub import scrub_message

T = TypeVar("T")

# DuckDB suggests a relation instead, to spare one copy of each batch: measured, the statement's
# result is within 0.05 s per million rows of it, and only a result can tell its columns first.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)

# DuckDB types whose Arrow form the columnar path writes exactly as the row path does (a time
# zone's timestamps are not among them: the row path writes them in the session's zone).
DUCKDB_ARROW_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "VARCHAR", "DATE", "TIMESTAMP"}
)
_DECIMAL = re.compile(r"DECIMAL\(\d+,(\d+)\)")


def columnar_type(type_name: str) -> bool:
    """A DuckDB type the columnar path writes exactly (decimals too, up to 6 places)."""
    decimal = _DECIMAL.fullmatch(type_name)
    if decimal is not None:
        return int(decimal.group(1)) <= PLAIN_DECIMAL_SCALE
    return type_name in DUCKDB_ARROW_TYPES


ARROW_BATCH_ROWS = 2048
ARROW_BATCH_BYTES = 2 * 1024 * 1024
PROGRESS_STEPS = 10_000  # SQLite VM instructions between two deadline checks
PROGRESS_GRACE_SECONDS = 2.0


class _ThreadBound:
    """Runs every driver call on the session's own thread."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)


class _Statement:
    def __init__(
        self,
        thread: _ThreadBound,
        cursor: Any,
        columns: list[Column],
        shape: Callable[[Sequence[Sequence[Any]]], Sequence[Sequence[Any]]],
    ) -> None:
        self._thread = thread
        self._cursor = cursor
        self._shape = shape
        self.columns = columns

    async def fetch(self, size: int) -> Sequence[Sequence[Any]]:
        if self._cursor is None:
            return []
        rows: Sequence[Sequence[Any]] = await self._thread.call(self._cursor.fetchmany, size)
        return self._shape(rows) if rows else rows


class _ArrowStatement:
    """A DuckDB result read as Arrow record batches, on the session's thread."""

    def __init__(self, thread: _ThreadBound, reader: pa.RecordBatchReader, columns: list[Column]) -> None:
        self._thread = thread
        self._reader = reader
        self.columns = columns

    @property
    def schema(self) -> pa.Schema:
        return self._reader.schema

    async def fetch_batch(self) -> pa.RecordBatch | None:
        return await self._thread.call(_gathered, self._reader)

    async def close(self) -> None:
        await self._thread.call(self._reader.close)


def _arrow_reader(cursor: Any) -> pa.RecordBatchReader:
    """DuckDB 1.x calls it ``fetch_record_batch``, 2.x ``to_arrow_reader``."""
    read = getattr(cursor, "to_arrow_reader", None) or cursor.fetch_record_batch
    reader: pa.RecordBatchReader = read(ARROW_BATCH_ROWS)
    return reader


def _gathered(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    """DuckDB's chunks (``ARROW_BATCH_ROWS`` rows, its own vector size) gathered up to about
    ``ARROW_BATCH_BYTES``: few batches for narrow rows, and no more than one chunk of wide ones."""
    batches: list[pa.RecordBatch] = []
    size = 0
    while size < ARROW_BATCH_BYTES:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        batches.append(batch)
        size += batch.nbytes
    if not batches:
        return None
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


class FileSession:
    def __init__(self, dialect: str, thread: _ThreadBound, connection: Any, *, columnar: bool) -> None:
        self._dialect = dialect
        self._thread = thread
        self._connection = connection
        self._columnar = columnar
        # Keyhole's watcher interrupts at the deadline (SQLite's progress handler is the backstop).
        self.timeout_grace = 0.0

    async def execute(self, sql: str, *, columnar: bool = True) -> _Statement | _ArrowStatement:
        cursor = await self._thread.call(self._connection.execute, sql)
        description = cursor.description
        if not description:
            return _Statement(self._thread, None, [], _same)
        if self._dialect == "sqlite":
            columns = [Column(str(item[0]), "") for item in description]
            return _Statement(self._thread, cursor, columns, _sqlite_rows)
        columns = [
            Column(str(item[0]), str(item[1]), kind_of("duckdb", str(item[1]))) for item in description
        ]
        if columnar and self._columnar and all(columnar_type(column.type_name) for column in columns):
            reader = await self._thread.call(_arrow_reader, cursor)
            return _ArrowStatement(self._thread, reader, columns)
        return _Statement(self._thread, cursor, columns, _duckdb_shaper(columns))

    async def cancel(self) -> None:
        self._connection.interrupt()

    def succeed(self) -> None:
        return None  # both run in autocommit: a statement that succeeded has committed

    def abandon(self) -> None:
        return None


class FilePool:
    def __init__(
        self,
        dialect: str,
        configuration: Mapping[str, Any],
        file_root: Path,
        *,
        max_sessions: int,
        columnar: bool = True,
    ):
        self._dialect = dialect
        self._columnar = columnar
        self._path = configuration.get("path", "")
        self._root = file_root
        self._slots = asyncio.Semaphore(max_sessions)

    @asynccontextmanager
    async def session(self, limits: QueryLimits, tag: str) -> AsyncIterator[FileSession]:
        path = resolve_sql_file(str(self._path), self._root)
        async with self._slots:
            thread = _ThreadBound(f"keyhole-{self._dialect}")
            opener = _open_sqlite if self._dialect == "sqlite" else _open_duckdb
            try:
                connection = await thread.call(opener, path, limits)
                try:
                    # Read-only only: a result the columnar path gives back is run again on the row path.
                    columnar = self._columnar and self._dialect == "duckdb" and takes_columns(limits)
                    yield FileSession(self._dialect, thread, connection, columnar=columnar)
                finally:
                    await thread.call(connection.close)
            finally:
                thread.shutdown()

    @asynccontextmanager
    async def tagged(self) -> AsyncIterator[_InProcess]:
        yield _InProcess()

    def describe_error(self, error: BaseException) -> str:
        if isinstance(error, KeyholeError):
            return error.message
        message = str(error) or type(error).__name__
        if isinstance(error, sqlite3.Error):
            return scrub_message(f"{message} [SQLite]")
        return scrub_message(message)

    async def dispose(self) -> None:
        return None


class _InProcess:
    """No statement of a file database outlives its process: there is never one to find."""

    async def count(self, tags: Sequence[str]) -> int:
        return 0

    async def cancel(self, tags: Sequence[str]) -> int:
        return 0

    async def terminate(self, tags: Sequence[str]) -> int:
        return 0


def _open_sqlite(path: Path, limits: QueryLimits) -> sqlite3.Connection:
    if not path.is_file():
        raise FileNotFoundError(f"no database file at {path.name}")
    mode = "ro" if limits.read_only else "rw"
    connection = sqlite3.connect(
        f"file:{quote(str(path))}?mode={mode}", uri=True, isolation_level=None, check_same_thread=False
    )
    connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    if limits.read_only:
        connection.execute("PRAGMA query_only = ON")
    # A backstop inside the engine, should the event loop be too busy to interrupt in time.
    deadline = time.monotonic() + limits.timeout_seconds + PROGRESS_GRACE_SECONDS
    connection.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, PROGRESS_STEPS)
    return connection


def _open_duckdb(path: Path, limits: QueryLimits) -> Any:
    import duckdb

    if not path.is_file():
        raise FileNotFoundError(f"no database file at {path.name}")
    return duckdb.connect(str(path), read_only=limits.read_only, config={"enable_external_access": False})


def _same(rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    return rows


def _sqlite_rows(rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    return [sqlite_row(row) for row in rows]


def _duckdb_shaper(columns: list[Column]) -> Callable[[Sequence[Sequence[Any]]], Sequence[Sequence[Any]]]:
    converters: list[tuple[int, Converter]] = []
    for index, column in enumerate(columns):
        converter = duckdb_converter(column.type_name)
        if converter is not None:
            converters.append((index, converter))
    if not converters:
        return _same

    def shape(rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
        shaped: list[Sequence[Any]] = []
        for row in rows:
            values = list(row)
            for index, converter in converters:
                values[index] = converter(values[index])
            shaped.append(values)
        return shaped

    return shape
