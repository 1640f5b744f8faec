"""A retried query never runs twice on the database.

Each attempt is tagged where other connections see it (PostgreSQL ``application_name``, a
leading comment in MariaDB's ``PROCESSLIST.INFO``). When a worker dies mid-statement, the
database keeps running the statement (it does not notice a vanished client while it waits on
a lock), so the orphan is cancelled as soon as the lease sweep notices, and in any case before
the retry's statement starts.

The statements here wait on a lock the test holds, so an orphan stays on the database until
someone cancels it, and the retry finishes when the test lets it.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pymysql
import pytest

from conftest import POSTGRES_URL, KeyholeServer, require_service, server_env
from jobs.support import Databases, Deployment, deploy, kill9
from keyhole.egress import CheckingResolver
from keyhole.egress.policy import EgressPolicy
from keyhole.queries.dialects import DatabasePool
from keyhole.queries.dialects.mysql import MySQLPool
from keyhole.queries.dialects.postgresql import PostgresPool
from keyhole.queries.execution import ColumnarStatement, QueryLimits
from keyhole.queries.orphans import MAX_TAG_LENGTH, attempt_tag, cancel_orphans

from .support import MARIADB, POSTGRES, sdk, wait

RECOVERY = {
    "KEYHOLE_JOB_LEASE_SECONDS": "3",
    "KEYHOLE_JOB_SWEEP_SECONDS": "1",
    "KEYHOLE_QUERY_CANCEL_POLL_SECONDS": "0.2",
}
WAIT_SECONDS = 45.0
WORKER_LOST = (
    "the worker running this query stopped before it finished; it was not run again because the "
    "connection is not read-only. Check the database, then submit it again"
)

# -- the databases, seen from outside Keyhole -------------------------------------------------


class PostgresLock:
    """An advisory lock held by the test; the query waits for it in a read-only transaction."""

    def __init__(self) -> None:
        require_service("PostgreSQL", "127.0.0.1", 5432)
        self.key = random.randrange(1, 2**62)
        self._holder = psycopg.connect(POSTGRES_URL, autocommit=True)
        self._holder.execute("SELECT pg_advisory_lock(%s)", (self.key,))
        self._observer = psycopg.connect(POSTGRES_URL, autocommit=True)

    @property
    def sql(self) -> str:
        return f"SELECT count(*) AS locked FROM (SELECT pg_advisory_xact_lock_shared({self.key})) AS l"

    expected = [{"locked": 1}]

    def attempts(self, query_id: str) -> list[str]:
        """The tags of the query's attempts on the database, one per running copy (a columnar
        copy has two transactions under its tag)."""
        rows = self._observer.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity WHERE application_name LIKE %s",
            (f"keyhole/q/{query_id}/%",),
        ).fetchall()
        return sorted(str(row[0]) for row in rows)

    def blocked(self, tag: str) -> bool:
        """The tagged statement runs and waits for the lock."""
        row = self._observer.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND state = 'active' AND wait_event_type = 'Lock'",
            (tag,),
        ).fetchone()
        return row is not None and row[0] == 1

    def release(self) -> None:
        self._holder.execute("SELECT pg_advisory_unlock(%s)", (self.key,))

    def close(self) -> None:
        self._holder.close()
        self._observer.close()


class MariaDBLock:
    """A row lock held by the test; the query's locking read waits for it."""

    def __init__(self) -> None:
        require_service("MariaDB", "127.0.0.1", 3306)
        self.table = f"orphan_{uuid.uuid4().hex[:12]}"
        self._observer = pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)
        with self._observer.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {self.table} (id INT PRIMARY KEY) ENGINE=InnoDB")
            cursor.execute(f"INSERT INTO {self.table} VALUES (1)")
        self._holder = pymysql.connect(host="127.0.0.1", user="root", database="test")
        with self._holder.cursor() as cursor:
            cursor.execute("START TRANSACTION")
            cursor.execute(f"SELECT id FROM {self.table} WHERE id = 1 FOR UPDATE")

    @property
    def sql(self) -> str:
        return f"SELECT id FROM {self.table} WHERE id = 1 LOCK IN SHARE MODE"

    expected = [{"id": 1}]

    def attempts(self, query_id: str) -> list[str]:
        with self._observer.cursor() as cursor:
            cursor.execute(
                "SELECT SUBSTRING_INDEX(SUBSTRING(INFO, 4), ' */', 1)"
                " FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
                (f"/* keyhole/q/{query_id}/%",),
            )
            return sorted(str(row[0]) for row in cursor.fetchall())

    def blocked(self, tag: str) -> bool:
        """The tagged statement runs (PROCESSLIST shows INFO only while one does)."""
        return tag in self.attempts(tag.split("/")[2])

    def release(self) -> None:
        self._holder.commit()

    def close(self) -> None:
        self._holder.close()
        with self._observer.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
        self._observer.close()


Lock = PostgresLock | MariaDBLock
LOCKS: dict[str, Callable[[], Lock]] = {"postgresql": PostgresLock, "mysql": MariaDBLock}
CONFIGURATIONS = {"postgresql": POSTGRES, "mysql": MARIADB}


@contextmanager
def lock_for(dialect: str) -> Iterator[Lock]:
    lock = LOCKS[dialect]()
    try:
        yield lock
    finally:
        lock.close()


def poll(what: Callable[[], bool], message: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


# -- the tag ----------------------------------------------------------------------------------


def test_an_attempt_tag_names_the_query_and_the_attempt() -> None:
    query_id = str(uuid.uuid4())
    assert attempt_tag(query_id, 1) == f"keyhole/q/{query_id}/1"
    # the longest attempt number the settings allow still fits PostgreSQL's application_name
    assert len(attempt_tag(query_id, 20).encode()) <= MAX_TAG_LENGTH
    for bad_id in ("", "a b", "x*/ DROP TABLE t; /*", "a/1", "é", "0" * 41):
        with pytest.raises(ValueError):
            attempt_tag(bad_id, 1)
    with pytest.raises(ValueError):
        attempt_tag(query_id, 0)


# -- the cancel helper against the real databases ---------------------------------------------


@pytest.fixture(params=["postgresql", "postgresql-columnar", "mysql"])
async def pool(request: pytest.FixtureRequest) -> AsyncIterator[DatabasePool]:
    resolver = CheckingResolver(EgressPolicy([IPv4Network("127.0.0.0/8")]))
    built: PostgresPool | MySQLPool
    if request.param.startswith("postgresql"):
        require_service("PostgreSQL", "127.0.0.1", 5432)
        columnar = request.param.endswith("columnar")
        built = PostgresPool(POSTGRES, resolver, pool_size=3, connect_timeout=5.0, columnar=columnar)
    else:
        require_service("MariaDB", "127.0.0.1", 3306)
        built = MySQLPool(MARIADB, resolver, pool_size=3, connect_timeout=5.0)
    try:
        yield built
    finally:
        await built.dispose()


async def _attempt(pool: DatabasePool, tag: str, sql: str) -> list[tuple[Any, ...]]:
    async with pool.session(QueryLimits(statement_timeout_ms=30_000), tag) as session:
        statement = await session.execute(sql)
        if isinstance(statement, ColumnarStatement):
            try:
                batch = await statement.fetch_batch()
                assert batch is not None
                return [tuple(row.values()) for row in batch.to_pylist()]
            finally:
                await statement.close()
        return [tuple(row) for row in await statement.fetch(10)]


async def _eventually(what: Callable[[], bool], message: str) -> None:
    deadline = time.monotonic() + 20
    while not what():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.05)


async def test_the_helper_cancels_earlier_attempts_and_spares_later_ones(pool: DatabasePool) -> None:
    dialect = "postgresql" if isinstance(pool, PostgresPool) else "mysql"
    query_id = str(uuid.uuid4())
    # Set up and torn down on a thread: the database waits for this loop's sessions meanwhile.
    lock = await asyncio.to_thread(LOCKS[dialect])
    orphan = asyncio.create_task(_attempt(pool, attempt_tag(query_id, 1), lock.sql))
    retry: asyncio.Task[list[tuple[Any, ...]]] | None = None
    try:
        await _eventually(lambda: lock.blocked(attempt_tag(query_id, 1)), "attempt 1 runs")
        retry = asyncio.create_task(_attempt(pool, attempt_tag(query_id, 2), lock.sql))
        await _eventually(lambda: lock.blocked(attempt_tag(query_id, 2)), "attempt 2 runs")

        # A columnar attempt holds two transactions under its tag: the statement's and the one
        # that prepared it (both go).
        columnar = isinstance(pool, PostgresPool) and pool.arrow is not None
        assert await cancel_orphans(pool, query_id, through_attempt=1) == (2 if columnar else 1)
        assert lock.attempts(query_id) == [attempt_tag(query_id, 2)]  # gone on return
        with pytest.raises(Exception, match=r"(?i)cancel|interrupt"):
            await orphan

        lock.release()
        assert await asyncio.wait_for(retry, 20) == [tuple(lock.expected[0].values())]
        # the pooled connection is back under its own name: the tag lived as long as the attempt
        assert lock.attempts(query_id) == []
        assert await cancel_orphans(pool, query_id, through_attempt=2) == 0
    finally:
        await asyncio.to_thread(lock.close)
        await asyncio.gather(orphan, *([retry] if retry else []), return_exceptions=True)


async def test_an_orphan_that_ignores_the_cancel_is_disconnected() -> None:
    """A session idle inside its transaction has no statement to cancel: after the grace period
    its connection is terminated."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    resolver = CheckingResolver(EgressPolicy([IPv4Network("127.0.0.0/8")]))
    pool = PostgresPool(POSTGRES, resolver, pool_size=1, connect_timeout=5.0)
    query_id = str(uuid.uuid4())
    stuck = await pool.connect_raw()
    try:
        await stuck.execute(f"BEGIN READ ONLY; SET LOCAL application_name = '{attempt_tag(query_id, 1)}'")
        assert await cancel_orphans(pool, query_id, through_attempt=1) == 1
        observer = await asyncpg.connect(POSTGRES_URL)
        try:
            backend = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
            assert await observer.fetchval(backend, stuck.get_server_pid()) == 0  # disconnected
        finally:
            await observer.close()
    finally:
        stuck.terminate()
        await pool.dispose()


async def test_database_errors_read_the_same_with_the_tag(pool: DatabasePool) -> None:
    with pytest.raises(Exception) as raised:
        await _attempt(pool, attempt_tag(str(uuid.uuid4()), 1), "SELECT 1,\n  2 FROM FROM")
    message = pool.describe_error(raised.value)
    assert "syntax" in message and "keyhole/q" not in message, message
    if isinstance(pool, MySQLPool):
        assert "near 'FROM' at line 2" in message, message  # the tag shares the first line


# -- a worker killed mid-statement ------------------------------------------------------------


def _watch_the_retry(lock: Lock, query_id: str, client: Any) -> list[list[str]]:
    """Every look at the database until the query ends; the lock is released once the retry's
    statement is on the database (so it can finish)."""
    seen: list[list[str]] = []
    retried = False

    def ended() -> bool:
        nonlocal retried
        seen.append(lock.attempts(query_id))
        if not retried and any(not tag.endswith("/1") for tag in seen[-1]):
            retried = True
            lock.release()
        return str(client.query_runner.get_query(id=query_id).data.status) in ("done", "failed")

    poll(ended, "the query did not end after its worker died")
    return seen


def _running(lock: Lock, client: Any, connection_id: str) -> str:
    submitted = client.query_runner.run_query(connection_id=connection_id, query=lock.sql)
    query_id = str(submitted.data.id)
    poll(lambda: lock.blocked(attempt_tag(query_id, 1)), "attempt 1 never reached the database")
    return query_id


def _assert_one_copy_at_a_time(seen: list[list[str]], query_id: str) -> None:
    assert all(len(look) <= 1 for look in seen), [look for look in seen if len(look) > 1][:3]
    retries = {tag for look in seen for tag in look if tag != attempt_tag(query_id, 1)}
    assert retries == {attempt_tag(query_id, 2)}, seen[-5:]


@pytest.fixture(scope="module")
def distributed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, Any]]:
    """A server and a `keyhole worker` on procrastinate, and a tenant's client."""
    databases = Databases()
    instance = deploy(
        tmp_path_factory.mktemp("orphans-distributed"), "procrastinate", databases, workers=1, **RECOVERY
    )
    keys = instance.server.bootstrap("orphans", "orphans@orphans.test")
    yield instance, sdk(instance.server, keys.user_api_key)
    instance.stop()
    databases.drop_all()


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_a_retry_on_a_new_worker_never_overlaps_the_orphan(
    distributed: tuple[Deployment, Any], dialect: str
) -> None:
    deployment, client = distributed
    created = client.connections.create(
        name=dialect, type=dialect, configuration=dict(CONFIGURATIONS[dialect])
    )
    with lock_for(dialect) as lock:
        query_id = _running(lock, client, str(created.data.id))
        kill9(deployment.workers[-1])
        deployment.start_worker()
        seen = _watch_the_retry(lock, query_id, client)
        result = wait(client, query_id)
        assert result.data.status == "done", (result.data.error, deployment.worker_logs()[-3000:])
        assert result.data.results == lock.expected
        _assert_one_copy_at_a_time(seen, query_id)
        assert lock.attempts(query_id) == []


def test_a_writing_query_is_not_retried_and_its_orphan_is_cancelled(
    distributed: tuple[Deployment, Any],
) -> None:
    deployment, client = distributed
    writing = {**POSTGRES, "query": {"read_only": False}}
    created = client.connections.create(name="pg-rw", type="postgresql", configuration=writing)
    with lock_for("postgresql") as lock:
        query_id = _running(lock, client, str(created.data.id))
        kill9(deployment.workers[-1])
        deployment.start_worker()
        result = wait(client, query_id, timeout=WAIT_SECONDS)
        assert lock.attempts(query_id) == []  # gone before the query was reported failed
        assert (result.data.status, result.data.error) == ("failed", WORKER_LOST), result.data


def test_the_sweep_cancels_the_orphans_of_jobs_it_fails(tmp_path: Path) -> None:
    """No attempt left: nothing retries, and the sweep alone stops each orphan, before the query
    is reported failed. The embedded engine here: the sweep runs in the restarted server."""
    env = server_env(tmp_path, **RECOVERY, KEYHOLE_JOB_MAX_ATTEMPTS="1")
    first = KeyholeServer(tmp_path, env).start()
    second: KeyholeServer | None = None
    try:
        with lock_for("postgresql") as pg_lock, lock_for("mysql") as maria_lock:
            keys = first.bootstrap("orphans-sweep", "sweep@orphans.test")
            client = sdk(first, keys.user_api_key)
            queries: list[tuple[Lock, str]] = []
            for dialect, lock in (("postgresql", pg_lock), ("mysql", maria_lock)):
                configuration = dict(CONFIGURATIONS[dialect])
                created = client.connections.create(name=dialect, type=dialect, configuration=configuration)
                queries.append((lock, _running(lock, client, str(created.data.id))))
            assert first.process is not None
            kill9(first.process)
            first.process = None
            second = KeyholeServer(tmp_path, env).start()  # the same home: same store and keys
            client = sdk(second, keys.user_api_key)
            for lock, query_id in queries:
                result = wait(client, query_id, timeout=WAIT_SECONDS)
                assert lock.attempts(query_id) == []  # already gone when the query showed failed
                assert (result.data.status, result.data.error) == (
                    "failed",
                    "worker stopped responding during attempt 1 of 1",
                )
    finally:
        first.stop()
        if second is not None:
            second.stop()
