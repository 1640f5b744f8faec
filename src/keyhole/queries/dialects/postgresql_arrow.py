"""PostgreSQL results as Arrow record batches: the ADBC driver reads a binary ``COPY`` of the
statement straight into columns (no Python object per value), for ``queries/columnar.py``.

Chosen by ``PostgresSession.execute`` for a read-only statement whose every column has a type
in ``ARROW_TYPES``; anything else, and any statement the driver cannot run (``SHOW``, a trailing
semicolon…), takes the asyncpg row path: the choice is invisible in the result.

* **Connection**: libpq (inside the driver), to the address the egress policy checked
  (``hostaddr``; ``host`` keeps the name for TLS), with every default that could send something
  the connection does not hold switched off: no password file, no client certificate, no GSS,
  only password, md5, SCRAM or no authentication. A few idle connections are kept per pool.
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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from keyhole.databases.connectivity import pinned_address
from keyhole.egress import CheckingResolver
from keyhole.queries.columnar import ColumnarUnavailable
from keyhole.queries.execution import Column, QueryFailed, QueryLimits

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
BATCH_BYTES = 4 * 1024 * 1024  # per record batch: memory per run stays a few batches
_CANCELLED = "57014"  # query_canceled: the statement timeout, or a cancel
_CANCELLED_WORDS = re.compile(r"canceling statement due to [^\n]*")
_NO_FILE = "/nonexistent/keyhole"  # libpq finds nothing there: no password file, no client key

Backend = tuple[int, datetime]


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

    async def acquire(self) -> Any:
        if self._idle:
            return self._idle.pop()
        import adbc_driver_postgresql.dbapi

        port = int(self._configuration.get("port") or 5432)
        address = await pinned_address(self._resolver, self._configuration["hostname"], port)
        info = conninfo(
            self._configuration, address, application_name=self._application_name, timeout=self._timeout
        )
        async with asyncio.timeout(self._timeout + 1):
            return await asyncio.to_thread(adbc_driver_postgresql.dbapi.connect, info, autocommit=True)

    def release(self, connection: Any, *, reusable: bool) -> None:
        if reusable and len(self._idle) < self._keep:
            self._idle.append(connection)
        else:
            _close(connection)

    async def dispose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await asyncio.to_thread(_close, connection)


def _close(connection: Any) -> None:
    with contextlib.suppress(Exception):
        connection.close()


class ArrowStatement:
    """One statement running on an ADBC connection inside its own read-only transaction."""

    def __init__(
        self,
        connections: ArrowConnections,
        connection: Any,
        columns: Sequence[Column],
        *,
        cancel: Callable[[], Awaitable[None]],
    ) -> None:
        self._connections = connections
        self._connection = connection
        self._cancel = cancel
        self._cursor: Any = None
        self._reader: pa.RecordBatchReader | None = None
        self._exhausted = False
        self._failed = False
        self.columns = list(columns)

    @property
    def schema(self) -> pa.Schema:
        assert self._reader is not None
        return self._reader.schema

    async def start(
        self, sql: str, limits: QueryLimits, tag: str, on_backend: Callable[[Backend], None]
    ) -> None:
        """Open the transaction, hand its backend to the session (for cancels), run ``sql``."""
        try:
            backend = await asyncio.to_thread(self._begin, limits, tag)
            on_backend(backend)
            self._reader = await asyncio.to_thread(self._run, sql)
        except Exception as error:
            self._failed = True
            raise _failure(error) from None

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
        if self._reader is None or self._exhausted:
            return None
        try:
            batch = await asyncio.to_thread(_next_batch, self._reader)
        except Exception as error:
            self._failed = True
            raise _failure(error) from None
        if batch is None:
            self._exhausted = True
        return batch

    async def close(self) -> None:
        """End the transaction and keep the connection; one left in the middle of a COPY (a
        truncated result, a run stopped) is cancelled at the server first, then closed."""
        if self._exhausted and not self._failed:
            try:
                await asyncio.to_thread(self._rollback)
            except Exception:
                logger.info("ending a columnar transaction failed; its connection is closed")
            else:
                self._connections.release(self._connection, reusable=True)
                return
        elif self._reader is not None and not self._failed:
            await self._cancel()  # else closing the reader would read the rest of the COPY
        await asyncio.to_thread(self._discard)
        self._connections.release(self._connection, reusable=False)

    def _discard(self) -> None:
        for resource in (self._reader, self._cursor):
            if resource is not None:
                with contextlib.suppress(Exception):
                    resource.close()

    def _rollback(self) -> None:
        self._cursor.close()
        cursor = self._connection.cursor()
        try:
            cursor.execute("ROLLBACK")
        finally:
            cursor.close()


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


def _failure(error: Exception) -> Exception:
    """A timeout or a cancel ends the query as on the row path; any other failure (a statement
    ``COPY`` cannot wrap, a runtime error) sends the statement to the row path, which runs it
    again and reports the database's own words if it fails there too."""
    cancelled = _CANCELLED_WORDS.search(str(error))  # a batch reader's error has no sqlstate
    if getattr(error, "sqlstate", None) == _CANCELLED or cancelled:
        primary = _primary(error) or (cancelled.group(0) if cancelled else "canceling statement")
        return QueryFailed(f"{primary} [SQLSTATE {_CANCELLED}]", key="query_failed")
    logger.info("the columnar path gave way to the row path: %s", type(error).__name__)
    return ColumnarUnavailable(type(error).__name__)


def _primary(error: Exception) -> str | None:
    for name, value in getattr(error, "details", None) or ():
        if name == b"PG_DIAG_MESSAGE_PRIMARY":
            return bytes(value).decode("utf-8", "replace")
    return None
