"""PostgreSQL results as Arrow record batches: the ADBC driver reads a binary ``COPY`` of the
statement straight into columns (no Python object per value), for ``queries/columnar.py``.

Chosen by ``PostgresSession.execute`` for a run ``execution.takes_columns`` allows (read-only,
large limits) whose every column has a type in ``ARROW_TYPES``; anything else, and any statement
``COPY`` cannot wrap (``SHOW``, a trailing comment…), takes the asyncpg row path: the choice is
invisible in the result.

* **Connection**: libpq (inside the driver), to the address the egress policy checked
  (``hostaddr``; ``host`` keeps the name for TLS), with every default that could send something
  the connection does not hold switched off: no password file, no client certificate, no GSS,
  only password, md5, SCRAM or no authentication. A few idle connections are kept per pool.
* **Thread**: every driver call of one statement runs on one thread of its own (``DriverThread``),
  so nothing is closed under a call still running; a cancel goes to the server first.
* **Limits**: ``BEGIN READ ONLY`` and ``SET LOCAL statement_timeout`` as on the row path, the
  attempt's tag as ``application_name`` (orphans are found alike) and the backend pid and
  transaction start handed to the session, which cancels this transaction too.
* **One statement**: the statement was already parsed alone (asyncpg ``prepare``, extended
  protocol) before it gets here, so wrapping it in ``COPY ( … )`` cannot make it two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

import pyarrow as pa

from keyhole.databases.connectivity import pinned_address
from keyhole.egress import CheckingResolver
from keyhole.queries.columnar import ColumnarUnavailable
from keyhole.queries.execution import Column, QueryFailed, QueryLimits
from keyhole.vault.scrub import NO_SECRETS, Scrubber, scrub_message

logger = logging.getLogger(__name__)

ARROW_TYPES = frozenset(
    {
        "int2",
        "int4",
        "int8",
        "float8",
        "bool",
        "text",
        "varchar",
        "bpchar",
        "numeric",
        "date",
        "timestamp",
        "timestamptz",
        "uuid",
        "json",
        "jsonb",
        "bytea",
    }
)
BATCH_BYTES = 2 * 1024 * 1024  # per record batch: memory per run stays a few batches
_CANCELLED = "57014"  # query_canceled: the statement timeout, or a cancel
# A batch reader's error: libpq's words for what the server said, without the fields.
_LIBPQ_ERROR = re.compile(r"\[libpq\] Execution error \[PGRES_FATAL_ERROR\]: ERROR:\s+([^\n]*)")
_NOT_COPYABLE = frozenset({"42601", "0A000"})  # syntax error, feature not supported (in COPY)
_NO_FILE = "/nonexistent/keyhole"  # libpq finds nothing there: no password file, no client key

Backend = tuple[int, datetime]
T = TypeVar("T")


def _quote(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def supports(configuration: Mapping[str, Any]) -> bool:
    """``verify-ca`` would need a CA file of the server's own: such connections keep the row path."""
    return str(configuration.get("ssl_mode", "prefer")) != "verify-ca"


def conninfo(configuration: Mapping[str, Any], address: str, *, application_name: str, timeout: float) -> str:
    """The libpq connection string of a PostgreSQL connection, pinned to ``address``."""
    ssl_mode = configuration.get("ssl_mode", "prefer")
    parameters = {
        "host": configuration["hostname"],
        "hostaddr": address,
        "port": int(configuration.get("port") or 5432),
        "dbname": configuration.get("database") or "postgres",
        "user": configuration["username"],
        "password": configuration.get("password") or "",
        "sslmode": ssl_mode,
        "sslcert": _NO_FILE,
        "sslkey": _NO_FILE,
        "passfile": _NO_FILE,
        "gssencmode": "disable",
        "require_auth": "none,password,md5,scram-sha-256",
        "sslcertmode": "disable",
        "sslcrl": _NO_FILE,
        "sslcrldir": _NO_FILE,
        "sslrootcert": _NO_FILE,
        "options": "",  # not PGOPTIONS: the statement resolves names as the row path's prepare did
        "client_encoding": "UTF8",  # as asyncpg asks: text arrives as UTF-8 whatever the database's
        "connect_timeout": max(2, int(timeout + 0.999)),
        "application_name": application_name,
    }
    if ssl_mode == "verify-full":
        parameters["sslrootcert"] = "system"  # the system's CAs, as on the row path
    return " ".join(f"{name}={_quote(value)}" for name, value in parameters.items())


class ArrowConnections:
    """ADBC connections of one PostgreSQL pool: opened on demand, a few kept idle for reuse."""

    def __init__(
        self,
        configuration: Mapping[str, Any],
        resolver: CheckingResolver,
        *,
        keep: int,
        connect_timeout: float,
        application_name: str,
    ) -> None:
        self._configuration = dict(configuration)
        self._resolver = resolver
        self._keep = keep
        self._timeout = connect_timeout
        self._application_name = application_name
        self._idle: list[Any] = []
        self._disposed = False

    async def acquire(self, thread: DriverThread) -> Any:
        """A connection, opened on ``thread`` when none is idle (libpq's ``connect_timeout`` is
        its deadline)."""
        if self._idle:
            return self._idle.pop()
        import adbc_driver_postgresql.dbapi

        port = int(self._configuration.get("port") or 5432)
        address = await pinned_address(self._resolver, self._configuration["hostname"], port)
        info = conninfo(
            self._configuration, address, application_name=self._application_name, timeout=self._timeout
        )
        return await thread.call(lambda: adbc_driver_postgresql.dbapi.connect(info, autocommit=True))

    def release(self, connection: Any, *, reusable: bool) -> None:
        """Keep ``connection`` for the next statement, or close it (on the caller's thread, which
        is the one that used it)."""
        if reusable and not self._disposed and len(self._idle) < self._keep:
            self._idle.append(connection)
        else:
            _close(connection)

    async def dispose(self) -> None:
        self._disposed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await asyncio.to_thread(_close, connection)


def _close(connection: Any) -> None:
    with contextlib.suppress(Exception):
        connection.close()


class DriverThread:
    """One thread for every driver call of one statement: a connection, cursor or reader is never
    used by two threads, nor closed while a call on it runs (closing waits its turn)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyhole-adbc")

    async def call(self, function: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def last(self, function: Callable[[], None]) -> None:
        """Run ``function`` after every call already queued, whatever happens to the caller."""
        done = asyncio.get_running_loop().run_in_executor(self._executor, function)
        try:
            await asyncio.shield(done)
        finally:
            self._executor.shutdown(wait=False)


class ArrowStatement:
    """One statement running on an ADBC connection inside its own read-only transaction."""

    def __init__(self, connections: ArrowConnections, columns: Sequence[Column]) -> None:
        self._connections = connections
        self._thread = DriverThread()
        self._connection: Any = None
        self._cursor: Any = None
        self._reader: pa.RecordBatchReader | None = None
        self._exhausted = False
        self._failed = False
        self._scrubber = NO_SECRETS
        self.columns = list(columns)

    @property
    def schema(self) -> pa.Schema:
        assert self._reader is not None
        return self._reader.schema

    async def start(
        self,
        sql: str,
        limits: QueryLimits,
        tag: str,
        on_backend: Callable[[Backend], None],
        scrubber: Scrubber,
    ) -> None:
        """Connect (or reuse), open the transaction, hand its backend to the session (for
        cancels), run ``sql``. ``ColumnarUnavailable`` when this path cannot run it."""
        self._scrubber = scrubber
        try:
            self._connection = await self._connections.acquire(self._thread)
        except Exception as error:
            logger.warning(
                "the columnar path could not connect (%s); using the row path", type(error).__name__
            )
            self._failed = True
            raise ColumnarUnavailable("no connection") from None
        try:
            on_backend(await self._thread.call(lambda: self._begin(limits, tag)))
            self._reader = await self._thread.call(lambda: self._run(sql))
        except Exception as error:
            self._failed = True
            raise self._failure(error, starting=True) from None

    def _begin(self, limits: QueryLimits, tag: str) -> Backend:
        self._cursor = self._connection.cursor()
        self._cursor.execute("BEGIN TRANSACTION READ ONLY")
        self._cursor.execute(f"SET LOCAL statement_timeout = {int(limits.statement_timeout_ms)}")
        self._cursor.execute(
            "SELECT pg_backend_pid(), now(), set_config('application_name', $1, true)", (tag,)
        )
        pid, started, _ = self._cursor.fetchone()
        return int(pid), started

    def _run(self, sql: str) -> pa.RecordBatchReader:
        import adbc_driver_postgresql

        self._cursor.adbc_statement.set_options(
            **{adbc_driver_postgresql.StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(BATCH_BYTES)}
        )
        self._cursor.execute(sql)
        reader: pa.RecordBatchReader = self._cursor.fetch_record_batch()
        return reader

    async def fetch_batch(self) -> pa.RecordBatch | None:
        reader = self._reader
        if reader is None or self._exhausted:
            return None
        try:
            batch = await self._thread.call(lambda: _next_batch(reader))
        except Exception as error:
            self._failed = True
            raise self._failure(error, starting=False) from None
        if batch is None:
            self._exhausted = True
        return batch

    def interrupt(self) -> None:
        """Stop what runs at the server now (ADBC's cancel is safe from any thread)."""
        if self._cursor is not None:
            with contextlib.suppress(Exception):
                self._cursor.adbc_cancel()

    async def close(self) -> None:
        """End the transaction and keep the connection; one left in the middle of a COPY (a
        truncated result, a run stopped) is cancelled at the server first, then closed."""
        if not self._exhausted:
            self.interrupt()  # else a read still running, or closing the reader, reads the rest
        await self._thread.last(self._finish)

    def _finish(self) -> None:
        if self._connection is None:
            return
        reusable = self._exhausted and not self._failed
        if reusable:
            try:
                self._rollback()
            except Exception:
                logger.info("ending a columnar transaction failed; its connection is closed")
                reusable = False
        if not reusable:
            for resource in (self._reader, self._cursor):
                if resource is not None:
                    with contextlib.suppress(Exception):
                        resource.close()
        self._connections.release(self._connection, reusable=reusable)

    def _rollback(self) -> None:
        self._cursor.close()
        cursor = self._connection.cursor()
        try:
            cursor.execute("ROLLBACK")
        finally:
            cursor.close()

    def _failure(self, error: Exception, *, starting: bool) -> Exception:
        """What the server said, in the row path's words, for a failure of the statement itself;
        ``ColumnarUnavailable`` (the row path runs it) for one of this path: a statement ``COPY``
        cannot wrap, a value the driver cannot convert."""
        sqlstate, primary = _server_error(error)
        if sqlstate in _NOT_COPYABLE and starting:
            return ColumnarUnavailable(sqlstate)
        if primary is None:
            logger.info("the columnar path gave way to the row path: %s", type(error).__name__)
            return ColumnarUnavailable(type(error).__name__)
        words = f"{primary} [SQLSTATE {sqlstate}]" if sqlstate else primary
        return QueryFailed(scrub_message(words, self._scrubber), key="query_failed")


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


def _server_error(error: Exception) -> tuple[str | None, str | None]:
    """The SQLSTATE and primary message of an error the server sent, from the driver's
    structured fields (an error of ``execute``), or from libpq's own words ``ERROR:  …`` (an
    error while reading batches, which carries no fields); (None, None) for any other error."""
    sqlstate = getattr(error, "sqlstate", None)
    details = dict(getattr(error, "details", None) or ())
    primary = details.get(b"PG_DIAG_MESSAGE_PRIMARY")
    if sqlstate and primary is not None:
        return str(sqlstate), bytes(primary).decode("utf-8", "replace")
    said = _LIBPQ_ERROR.search(str(error)) if isinstance(error, OSError) else None
    if said is None:
        return None, None
    message = said.group(1).strip()
    return (_CANCELLED if message.startswith("canceling statement due to") else None), message
