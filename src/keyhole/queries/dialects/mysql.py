"""MySQL and MariaDB: a bounded SQLAlchemy pool of aiomysql connections, streamed unbuffered.

* **Streaming**: an ``SSCursor`` reads rows off the socket as they are fetched (PyMySQL's
  default cursor would buffer the whole result). aiomysql rather than asyncmy: it is already a
  dependency (the probes use it), it streams the same way, and MySQL is not the hot path.
* **One statement**: aiomysql always asks for ``CLIENT_MULTI_STATEMENTS``; the flag is
  cleared before the handshake so that ``COMMIT; DROP …`` is a syntax error, not an escape.
* **Read-only**: ``SET SESSION TRANSACTION READ ONLY`` then ``START TRANSACTION READ ONLY``.
  The session setting matters: DDL implicitly commits, and after ``START TRANSACTION READ
  ONLY`` alone MariaDB 10.11 happily ran ``CREATE TABLE`` (checked); with the session
  characteristic it answers error 1792.
* **Timeout**: ``max_statement_time`` (MariaDB, seconds) or ``max_execution_time`` (MySQL, ms).
* **Cancel**: ``KILL QUERY <thread id>`` from a separate connection.
* **Tag**: the statement is sent as ``/* <attempt tag> */ <sql>``; the server keeps the comment
  in ``information_schema.PROCESSLIST.INFO``, where orphans of dead workers are found (among the
  threads of the connection's user). A session variable or connection attribute would not do:
  the former is invisible to other connections, the latter fixed for a pooled connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from keyhole.databases.connectivity import password_scrubber, pinned_address
from keyhole.egress import CheckingResolver
from keyhole.queries.dialects import describe_connect_error, end_transaction
from keyhole.queries.execution import Column, QueryLimits
from keyhole.queries.kinds import kind_of
from keyhole.queries.values import mysql_converters
from keyhole.vault.scrub import scrub_message

logger = logging.getLogger(__name__)

_UNKNOWN_THREAD = 1094  # ER_NO_SUCH_THREAD


def _type_names() -> dict[int, str]:
    from pymysql.constants import FIELD_TYPE

    return {value: name for name, value in vars(FIELD_TYPE).items() if isinstance(value, int)}


class _Statement:
    def __init__(self, session: MySQLSession, cursor: Any, columns: list[Column]) -> None:
        self._session = session
        self._cursor = cursor
        self.columns = columns

    async def fetch(self, size: int) -> Sequence[Sequence[Any]]:
        if self._cursor is None:
            return []
        rows: Sequence[Sequence[Any]] = await self._cursor.fetchmany(size)
        if not rows:
            self._session.unread = False
        return rows


class MySQLSession:
    timeout_grace = 1.0

    def __init__(self, pool: MySQLPool, driver: Any, thread_id: int, tag: str) -> None:
        self._pool = pool
        self._driver = driver
        self._thread_id = thread_id
        self._marker = _marker(tag)
        self.succeeded = False
        self.unread = False
        self.abandoned = False

    async def execute(self, sql: str, *, columnar: bool = True) -> _Statement:
        """Rows only: MySQL has no columnar path (``columnar`` is the session protocol's)."""
        import aiomysql

        cursor = await self._driver.cursor(aiomysql.SSCursor)
        # On the same line as the statement, so that error positions ("at line 1") stay true.
        await cursor.execute(f"{self._marker} {sql}")
        if cursor.description is None:
            return _Statement(self, None, [])
        names = self._pool.type_names
        columns = []
        for item in cursor.description:
            type_name = names.get(int(item[1]), str(item[1]))
            columns.append(Column(str(item[0]), type_name, kind_of("mysql", type_name)))
        self.unread = True
        return _Statement(self, cursor, columns)

    async def cancel(self) -> None:
        try:
            control = await self._pool.connect_raw()
        except Exception as error:
            logger.warning("could not open a connection to cancel a query: %s", type(error).__name__)
            return
        try:
            async with control.cursor() as cursor:
                await cursor.execute(f"KILL QUERY {int(self._thread_id)}")
        except Exception as error:
            logger.warning("KILL QUERY failed: %s", type(error).__name__)
        finally:
            control.close()

    def succeed(self) -> None:
        self.succeeded = True

    def abandon(self) -> None:
        self.abandoned = True


class MySQLPool:
    def __init__(
        self,
        configuration: Mapping[str, Any],
        resolver: CheckingResolver,
        *,
        pool_size: int,
        connect_timeout: float,
    ) -> None:
        self._configuration = dict(configuration)
        self._resolver = resolver
        self._timeout = connect_timeout
        self._scrubber = password_scrubber(configuration)  # computed once per pool
        self._converters = mysql_converters()
        self.type_names = _type_names()
        self.engine: AsyncEngine = create_async_engine(
            "mysql+aiomysql://",
            async_creator=self.connect_raw,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=connect_timeout + 60,
            pool_pre_ping=True,
            pool_recycle=1800,
        )

    async def connect_raw(self) -> Any:
        """A new aiomysql connection to the egress-checked address, multi-statements off."""
        import aiomysql
        from pymysql.constants import CLIENT

        configuration = self._configuration
        port = int(configuration.get("port") or 3306)
        address = await pinned_address(self._resolver, configuration["hostname"], port)
        connection = aiomysql.Connection(
            host=address,
            port=port,
            user=configuration["username"],
            password=configuration.get("password") or "",
            db=configuration.get("database") or None,
            connect_timeout=self._timeout,
            conv=self._converters,
            local_infile=False,
            charset="utf8mb4",
            ssl=_tls(configuration.get("ssl_mode", "prefer")),
        )
        connection.client_flag &= ~CLIENT.MULTI_STATEMENTS
        async with asyncio.timeout(self._timeout):
            await connection._connect()
        return connection

    @asynccontextmanager
    async def session(self, limits: QueryLimits, tag: str) -> AsyncIterator[MySQLSession]:
        async with self.engine.connect() as connection:
            proxied = await connection.get_raw_connection()
            driver: Any = proxied.driver_connection
            session: MySQLSession | None = None
            try:
                async with driver.cursor() as setup:
                    if getattr(connection.dialect, "is_mariadb", False):
                        await setup.execute(f"SET SESSION max_statement_time = {limits.timeout_seconds:.3f}")
                    else:
                        await setup.execute(
                            f"SET SESSION max_execution_time = {int(limits.statement_timeout_ms)}"
                        )
                    mode = "READ ONLY" if limits.read_only else "READ WRITE"
                    await setup.execute(f"SET SESSION TRANSACTION {mode}")
                    await setup.execute(f"START TRANSACTION {mode}")
                session = MySQLSession(self, driver, driver.thread_id(), tag)
                yield session
            finally:
                if session is not None and session.unread:
                    # Rows are still on the wire: closing is cheaper than draining them.
                    await connection.invalidate()
                else:
                    await end_transaction(
                        connection,
                        commit=driver.commit,
                        rollback=driver.rollback,
                        keep=session is not None and session.succeeded and not limits.read_only,
                    )

    @asynccontextmanager
    async def tagged(self) -> AsyncIterator[_TaggedThreads]:
        control = await self.connect_raw()
        try:
            yield _TaggedThreads(control, str(self._configuration["username"]), self._timeout)
        finally:
            control.close()

    def describe_error(self, error: BaseException) -> str:
        connect = describe_connect_error(error, self._scrubber, self._timeout)
        if connect is not None:
            return connect
        import pymysql

        original = getattr(error, "orig", error)
        if isinstance(original, pymysql.MySQLError) and len(original.args) >= 2:
            code, message = original.args[0], original.args[1]
            if code in (2003, 2013) and "connect" in str(message).lower():
                return scrub_message(f"could not connect to the database: {message}", self._scrubber)
            return scrub_message(f"{message} [MySQL error {code}]", self._scrubber)
        return scrub_message(f"{type(original).__name__}: {original}", self._scrubber)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _marker(tag: str) -> str:
    return f"/* {tag} */"


class _TaggedThreads:
    """Threads of the connection's user whose running statement starts with a tag's marker."""

    def __init__(self, control: Any, username: str, timeout: float) -> None:
        self._control = control
        self._username = username
        self._timeout = timeout

    async def count(self, tags: Sequence[str]) -> int:
        return len(await self._threads(tags))

    async def cancel(self, tags: Sequence[str]) -> int:
        return await self._kill("KILL QUERY", tags)

    async def terminate(self, tags: Sequence[str]) -> int:
        return await self._kill("KILL CONNECTION", tags)

    async def _threads(self, tags: Sequence[str]) -> list[int]:
        markers = tuple(_marker(tag) for tag in tags)
        async with asyncio.timeout(self._timeout), self._control.cursor() as cursor:
            await cursor.execute(
                "SELECT ID, LEFT(INFO, %s) FROM information_schema.PROCESSLIST"
                " WHERE ID <> CONNECTION_ID() AND USER = %s AND LEFT(INFO, 3) = '/* '",
                (max(map(len, markers)), self._username),
            )
            rows = await cursor.fetchall()
        return [int(thread) for thread, head in rows if str(head).startswith(markers)]

    async def _kill(self, command: str, tags: Sequence[str]) -> int:
        import pymysql

        threads = await self._threads(tags)
        async with asyncio.timeout(self._timeout), self._control.cursor() as cursor:
            for thread in threads:
                try:
                    await cursor.execute(f"{command} {thread}")
                except pymysql.err.OperationalError as error:
                    if error.args[0] != _UNKNOWN_THREAD:  # it ended meanwhile: that is the aim
                        raise
        return len(threads)


def _tls(mode: str) -> ssl.SSLContext | None:
    """disable: plain; prefer/require: TLS when the server offers it, unverified; verify-full:
    certificate and host name verified (against the checked address Keyhole connects to)."""
    if mode == "disable":
        return None
    context = ssl.create_default_context()
    if mode != "verify-full":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
