"""The columnar path (Arrow batches, pages encoded column by column) writes byte for byte the pages
of the row path, cuts them at the same rows, falls back to the row path where it cannot, and keeps
the row path's guarantees: read-only, timeouts, cancels, nothing left running, and a connection
that carries nothing but the connection's own credentials to the connection's own address."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import math
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import asyncpg
import duckdb
import orjson
import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import POSTGRES_URL, require_service
from keyhole.databases.connectivity import connect_postgresql
from keyhole.egress import CheckingResolver
from keyhole.egress.policy import EgressPolicy
from keyhole.queries.columnar import EncodedRows, export_batch
from keyhole.queries.dialects import DatabasePool
from keyhole.queries.dialects.postgresql import PostgresPool
from keyhole.queries.dialects.postgresql_arrow import ArrowConnections, DriverThread, conninfo
from keyhole.queries.dialects.sqlite_duckdb import FilePool
from keyhole.queries.execution import Control, QueryFailed, QueryLimits, run_statement
from keyhole.queries.exports import export_schema, page_batch
from keyhole.queries.pages import PageBuilder, PageLimits, ResultSummary
from keyhole.queries.values import encode_rows

from .support import POSTGRES

LOOPBACK = CheckingResolver(EgressPolicy([IPv4Network("127.0.0.0/8")]))
WIDE = QueryLimits(statement_timeout_ms=30_000, max_rows=10_000_000, max_bytes=2**40)


@dataclass
class Pages:
    pages: dict[int, bytes] = field(default_factory=dict)

    async def write(self, number: int, elements: Sequence[bytes]) -> None:
        self.pages[number] = b"[" + b",".join(elements) + b"]"

    async def discard(self, pages: int) -> None:
        for number in range(pages):
            self.pages.pop(number, None)


@dataclass
class Columns:
    batches: list[pa.RecordBatch] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.batches)

    async def write(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)

    async def finish(self) -> None:
        return None

    async def discard(self) -> None:
        self.batches.clear()


@dataclass
class Outcome:
    summary: ResultSummary | None
    error: str | None
    pages: dict[int, bytes]


async def _run(
    pool: DatabasePool,
    sql: str,
    *,
    limits: QueryLimits = WIDE,
    page_rows: int = 1000,
    page_bytes: int = 64 * 1024,
    control: Control | None = None,
    tag: str = "keyhole/q/columnar-test/1",
    columns: Columns | None = None,
) -> Outcome:
    sink = Pages()
    try:
        summary = await run_statement(
            lambda: pool.session(limits, tag),
            sql,
            sink,
            limits=limits,
            page_rows=page_rows,
            page_bytes=page_bytes,
            control=control or Control(),
            describe_error=pool.describe_error,
            cancel_poll_seconds=0.1,
            columns=columns,
        )
    except QueryFailed as failure:
        return Outcome(None, failure.message, sink.pages)
    return Outcome(summary, None, sink.pages)


def _same(columnar: Outcome, rows: Outcome, *, took_columns: bool) -> None:
    assert columnar.error == rows.error
    assert columnar.pages == rows.pages
    if rows.summary is None:
        assert columnar.summary is None
        return
    assert columnar.summary is not None
    assert columnar.summary.columnar is took_columns
    assert rows.summary.columnar is False
    for name in ("fields", "kinds", "count", "bytes", "pages", "truncated"):
        assert getattr(columnar.summary, name) == getattr(rows.summary, name), name


@pytest.fixture
async def postgres() -> AsyncIterator[tuple[PostgresPool, PostgresPool]]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    columnar = PostgresPool(POSTGRES, LOOPBACK, pool_size=2, connect_timeout=5.0, columnar=True)
    rows = PostgresPool(POSTGRES, LOOPBACK, pool_size=2, connect_timeout=5.0, columnar=False)
    try:
        yield columnar, rows
    finally:
        await columnar.dispose()
        await rows.dispose()


async def _both(
    pools: tuple[DatabasePool, DatabasePool], sql: str, **options: Any
) -> tuple[Outcome, Outcome]:
    columnar, rows = pools
    return await _run(columnar, sql, **options), await _run(rows, sql, **options)


# -- PostgreSQL: every type the columnar path takes -------------------------------------------

EDGES = r"""
SELECT * FROM (VALUES
  (1::int2, 1::int4, 9223372036854775807::int8, 0.1::float8, 12.50::numeric(10,2), true,
   'héllo "quoted" \ back'::text, 'ab'::char(3), 'x'::varchar(5), '2024-02-29'::date,
   '2024-02-29 13:14:15.123456'::timestamp, '2024-02-29 13:14:15.5+02'::timestamptz,
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{"k": [1, 2.5, null, "s"]}'::jsonb,
   '[1,  {"a": true}]'::json, '\xdeadbeef'::bytea),
  ((-32768)::int2, (-2147483648)::int4, (-9223372036854775808)::int8, 'NaN'::float8, 'NaN'::numeric, false,
   E'tab\there\nline\u0001\u001f\u007f end', '', '', '0001-01-01'::date,
   '0001-01-01 00:00:00'::timestamp, '1969-12-31 23:59:59.999999+00'::timestamptz,
   '00000000-0000-0000-0000-000000000000'::uuid, '"just a string"'::jsonb, 'null'::json, ''::bytea),
  (0::int2, 0::int4, 0::int8, '-Infinity'::float8, 'Infinity'::numeric, NULL,
   '😀 ünïcode ∑', NULL, NULL, '9999-12-31'::date,
   '9999-12-31 23:59:59.999999'::timestamp, '1900-06-15 12:00:00+05:30'::timestamptz,
   'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid, '{}'::jsonb, '{"b":1,"a":2}'::json, '\x00'::bytea),
  (NULL, NULL, NULL, '-0'::float8, '-Infinity'::numeric, NULL,
   NULL, NULL, NULL, NULL,
   '1970-01-01 00:00:00.5'::timestamp, NULL,
   NULL, NULL, NULL, NULL),
  (NULL, NULL, NULL, 5e-324::float8, '-1.000'::numeric, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (NULL, NULL, NULL, 1e16::float8, '0.00000000000000000001'::numeric, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) AS v(i2, i4, i8, f8, num, b, t, c, vc, d, ts, tstz, u, jb, j, by)
"""


async def test_every_columnar_type_writes_the_row_paths_bytes(
    postgres: tuple[PostgresPool, PostgresPool],
) -> None:
    columnar, rows = await _both(postgres, EDGES)
    _same(columnar, rows, took_columns=True)
    assert rows.summary is not None and rows.summary.count == 7


async def test_repeated_names_and_many_pages(postgres: tuple[PostgresPool, PostgresPool]) -> None:
    sql = (
        "SELECT g AS id, g AS id, md5(g::text) AS h, repeat('x', g % 50) AS pad, "
        "timestamptz '2024-01-01' + g * interval '1.5 seconds' AS at FROM generate_series(1, 20000) g"
    )
    columnar, rows = await _both(postgres, sql, page_rows=700, page_bytes=50_000)
    _same(columnar, rows, took_columns=True)
    assert rows.summary is not None and rows.summary.pages > 20
    assert rows.summary.fields == ["id", "id_2", "h", "pad", "at"]


@pytest.mark.parametrize(
    ("max_rows", "max_bytes", "rows", "width"),
    [
        (100_000, 2**40, 150_000, 13),  # cut by rows, inside a batch
        (100_000, 2**40, 100_000, 13),  # exactly max_rows: not truncated
        (1_000_000, 64 * 1024 * 1024, 70_000, 1000),  # cut by bytes
    ],
)
async def test_limits_truncate_at_the_same_row(
    postgres: tuple[PostgresPool, PostgresPool], max_rows: int, max_bytes: int, rows: int, width: int
) -> None:
    limits = QueryLimits(statement_timeout_ms=60_000, max_rows=max_rows, max_bytes=max_bytes)
    sql = f"SELECT g, repeat('y', {width} + g % 13) AS s FROM generate_series(1, {rows}) g"
    columnar, by_rows = await _both(postgres, sql, limits=limits, page_rows=5000, page_bytes=1_000_000)
    _same(columnar, by_rows, took_columns=True)
    assert by_rows.summary is not None and by_rows.summary.truncated is (rows > max_rows or width > 100)


@pytest.mark.parametrize(("max_rows", "max_bytes"), [(50, 2**40), (1_000_000, 5000)])
async def test_small_limits_keep_the_row_path(
    postgres: tuple[PostgresPool, PostgresPool], max_rows: int, max_bytes: int
) -> None:
    """A slow query cut after a few rows must not wait for a whole batch of them."""
    limits = QueryLimits(statement_timeout_ms=30_000, max_rows=max_rows, max_bytes=max_bytes)
    sql = "SELECT g, 'x' AS s FROM generate_series(1, 1000000) g"
    columnar, rows = await _both(postgres, sql, limits=limits)
    _same(columnar, rows, took_columns=False)
    assert rows.summary is not None and rows.summary.truncated


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _float_literal(value: float) -> str:
    if math.isnan(value):
        return "'NaN'::float8"
    if math.isinf(value):
        return "'Infinity'::float8" if value > 0 else "'-Infinity'::float8"
    return f"'{value!r}'::float8"


_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
_ROW = st.tuples(
    st.none() | st.integers(-(2**63), 2**63 - 1),
    st.none() | st.floats(),
    st.none() | _TEXT,
    st.none()
    | st.decimals(min_value=-(10**20), max_value=10**20, places=6)
    | st.just(decimal.Decimal("NaN")),
    st.none() | st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.none() | st.dates(),
)


def _values(rows: list[tuple[Any, ...]]) -> str:
    lines = []
    for integer, number, text, exact, moment, day in rows:
        cells = [
            "NULL::int8" if integer is None else f"{integer}::int8",
            "NULL::float8" if number is None else _float_literal(number),
            "NULL::text" if text is None else _literal(text) + "::text",
            "NULL::numeric" if exact is None else f"'{exact}'::numeric",
            "NULL::timestamp" if moment is None else f"'{moment.isoformat()}'::timestamp",
            "NULL::timestamptz" if moment is None else f"'{moment.isoformat()}+03:30'::timestamptz",
            "NULL::date" if day is None else f"'{day.isoformat()}'::date",
        ]
        lines.append("(" + ", ".join(cells) + ")")
    return "SELECT * FROM (VALUES " + ", ".join(lines) + ") AS v(i, f, t, n, ts, tz, d)"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_ROW, min_size=1, max_size=12))
async def test_generated_values_write_the_same_bytes(
    postgres: tuple[PostgresPool, PostgresPool], rows: list[tuple[Any, ...]]
) -> None:
    columnar, by_rows = await _both(postgres, _values(rows))
    _same(columnar, by_rows, took_columns=True)


def _cells(table: pa.Table) -> list[dict[str, Any]]:
    """Rows with NaN spelled so that two NaNs compare equal."""
    return [
        {
            name: "NaN" if isinstance(value, float) and math.isnan(value) else value
            for name, value in row.items()
        }
        for row in table.to_pylist()
    ]


@pytest.mark.parametrize(
    ("sql", "max_rows", "count"),
    [
        (EDGES, 1_000_000, 7),
        # cut inside a batch: the stored batch is cut at the same row
        (
            "SELECT g, md5(g::text)::uuid AS u, g * 0.5 AS x FROM generate_series(1, 150000) g",
            100_000,
            100_000,
        ),
    ],
)
async def test_stored_columns_export_as_the_pages_do(
    postgres: tuple[PostgresPool, PostgresPool], sql: str, max_rows: int, count: int
) -> None:
    columns = Columns()
    limits = QueryLimits(statement_timeout_ms=30_000, max_rows=max_rows)
    outcome = await _run(postgres[0], sql, columns=columns, limits=limits, page_bytes=4_000_000)
    summary = outcome.summary
    assert summary is not None and summary.column_batches == len(columns.batches) >= 1
    schema = export_schema(summary.fields, summary.kinds)
    from_columns = pa.Table.from_batches([export_batch(batch, schema) for batch in columns.batches], schema)
    rows = [row for number in sorted(outcome.pages) for row in orjson.loads(outcome.pages[number])]
    from_pages = pa.Table.from_batches([page_batch(rows, schema)], schema)
    assert from_columns.num_rows == summary.count == count
    assert _cells(from_columns) == _cells(from_pages)


async def test_a_run_that_falls_back_stores_no_columns(postgres: tuple[PostgresPool, PostgresPool]) -> None:
    columns = Columns()
    outcome = await _run(
        postgres[0], "SELECT g AS n, 'infinity'::date AS d FROM generate_series(1, 3) g", columns=columns
    )
    assert outcome.summary is not None and not outcome.summary.columnar
    assert outcome.summary.column_batches == 0 and columns.batches == []


# -- where the columnar path gives way ----------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "took_columns"),
    [
        ("SELECT 'infinity'::date AS d", False),  # the row path's driver writes it; Arrow cannot
        ("SELECT 'infinity'::timestamptz AS t, 1 AS n", False),
        ("SELECT '10000-01-01'::date AS d", None),  # both fail, with the same words
        ("SHOW TimeZone", False),  # a text column, but not a statement COPY can wrap
        ("SELECT 1 AS a;", True),
        ("SELECT 1 AS a -- a comment at the end", None),
        ("SELECT 1 / (g - 3000) AS x FROM generate_series(1, 5000) g", None),  # fails in the first batch
    ],
)
async def test_what_the_columnar_path_cannot_take_reads_as_on_the_row_path(
    postgres: tuple[PostgresPool, PostgresPool], sql: str, took_columns: bool | None
) -> None:
    columnar, rows = await _both(postgres, sql)
    if rows.error is not None and columnar.error != rows.error:
        # An error met while batches are read carries the server's words without the SQLSTATE
        # (libpq reports it without its fields there); it is never run a second time.
        assert columnar.error is not None and rows.error.startswith(columnar.error + " [SQLSTATE ")
    assert columnar.pages == rows.pages
    if took_columns is not None:
        _same(columnar, rows, took_columns=took_columns)


async def test_types_it_does_not_write_take_the_row_path(postgres: tuple[PostgresPool, PostgresPool]) -> None:
    columnar, rows = await _both(postgres, "SELECT 1 AS n, '1 day'::interval AS i, ARRAY[1] AS a")
    _same(columnar, rows, took_columns=False)


async def test_a_writable_connection_keeps_the_row_path(postgres: tuple[PostgresPool, PostgresPool]) -> None:
    writable = QueryLimits(statement_timeout_ms=30_000, read_only=False)
    columnar = await _run(postgres[0], "SELECT 1 AS n", limits=writable)
    assert columnar.summary is not None and columnar.summary.columnar is False


# -- the row path's guarantees, kept ----------------------------------------------------------


async def _gone(tag: str) -> None:
    """Wait until no connection carries ``tag`` (a closed connection's backend ends a moment after)."""
    for _ in range(200):
        if await _tagged(tag) == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"a connection tagged {tag} is still on the database")


async def _tagged(tag: str) -> int:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", tag
            )
        )
    finally:
        await connection.close()


async def test_read_only_is_enforced_by_the_database(postgres: tuple[PostgresPool, PostgresPool]) -> None:
    sql = "WITH w AS (SELECT nextval('kh_columnar_seq') AS n) SELECT n FROM w"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute("CREATE SEQUENCE IF NOT EXISTS kh_columnar_seq")
        before = await admin.fetchval("SELECT last_value FROM kh_columnar_seq")
        columnar, rows = await _both(postgres, sql)
        assert columnar.error == rows.error and columnar.error is not None
        assert "read-only" in columnar.error
        assert await admin.fetchval("SELECT last_value FROM kh_columnar_seq") == before
    finally:
        await admin.execute("DROP SEQUENCE IF EXISTS kh_columnar_seq")
        await admin.close()


async def test_the_statement_timeout_reads_the_same(postgres: tuple[PostgresPool, PostgresPool]) -> None:
    limits = QueryLimits(statement_timeout_ms=300)
    sql = "SELECT count(*) AS n FROM (SELECT pg_sleep(5)) AS s"
    columnar, rows = await _both(postgres, sql, limits=limits)
    assert columnar.error == rows.error
    assert columnar.error is not None and "statement timeout" in columnar.error


async def test_a_cancel_stops_the_statement_at_the_database(
    postgres: tuple[PostgresPool, PostgresPool],
) -> None:
    control = Control()
    tag = "keyhole/q/columnar-cancel/1"
    sql = "SELECT g, md5(g::text) AS h FROM generate_series(1, 50000000) g"
    running = asyncio.create_task(_run(postgres[0], sql, control=control, tag=tag, page_bytes=1_000_000))
    while await _tagged(tag) < 2:  # the prepared transaction and the columnar one
        await asyncio.sleep(0.05)
    control.cancel()
    outcome = await asyncio.wait_for(running, 30)
    assert outcome.error == "cancelled" and outcome.pages == {}
    await _gone(tag)


async def test_a_truncated_result_leaves_nothing_running(postgres: tuple[PostgresPool, PostgresPool]) -> None:
    tag = "keyhole/q/columnar-truncated/1"
    limits = QueryLimits(statement_timeout_ms=60_000, max_rows=100_000)
    outcome = await _run(postgres[0], "SELECT g FROM generate_series(1, 50000000) g", limits=limits, tag=tag)
    assert outcome.summary is not None and outcome.summary.truncated and outcome.summary.count == 100_000
    assert outcome.summary.columnar
    await _gone(tag)
    again = await _run(postgres[0], "SELECT 1 AS n")
    assert again.pages == {0: b'[{"n":1}]'}


# -- the page builder: encoded rows are placed as rows are ----------------------------------------


def _encoded(names: list[str], rows: list[tuple[Any, ...]]) -> EncodedRows:
    import numpy as np

    texts = [encode_rows(names, [row])[1:-1] + b"," for row in rows]
    ends = np.cumsum([len(text) for text in texts], dtype=np.int64)
    return EncodedRows(memoryview(b"".join(texts)), ends)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 10**6), st.text(max_size=40)), min_size=1, max_size=120),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    page_rows=st.integers(1, 50),
    page_bytes=st.integers(2, 600),
    max_rows=st.integers(1, 150),
    max_bytes=st.integers(1, 5000),
)
async def test_encoded_rows_make_the_pages_rows_make(
    rows: list[tuple[Any, ...]],
    cuts: list[int],
    page_rows: int,
    page_bytes: int,
    max_rows: int,
    max_bytes: int,
) -> None:
    names = ["n", "s"]
    limits = PageLimits(page_rows, page_bytes, max_rows, max_bytes)
    batches: list[list[tuple[Any, ...]]] = []
    start = 0
    for size in cuts * 20:
        if start >= len(rows):
            break
        batches.append(rows[start : start + size])
        start += size
    one_by_one, encoded = Pages(), Pages()
    by_rows = PageBuilder(one_by_one, names, limits)
    by_columns = PageBuilder(encoded, names, limits)
    for batch in batches:
        if not await by_rows.add(batch):
            break
    for batch in batches:
        if not await by_columns.add_encoded(_encoded(names, batch)):
            break
    assert await by_columns.finish() == await by_rows.finish()
    assert encoded.pages == one_by_one.pages
    for page in one_by_one.pages.values():
        assert len(page) <= page_bytes or len(orjson.loads(page)) == 1


# -- DuckDB ------------------------------------------------------------------------------------


@pytest.fixture
async def duck(tmp_path: Path) -> AsyncIterator[tuple[FilePool, FilePool]]:
    path = tmp_path / "columns.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "CREATE TABLE t AS SELECT range AS id, (range * 1.25 - 3)::DOUBLE AS x, "
            "'name ' || range AS name, (range * 1.25 - 3)::DECIMAL(18, 2) AS price, "
            "(range / 7)::DECIMAL(38, 6) AS fine, "
            "range % 3 = 0 AS flag, DATE '2024-01-01' + range::INTEGER AS day, "
            "TIMESTAMP '2024-01-01' + to_microseconds(range * 1500123) AS at FROM range(12000)"
        )
        connection.execute(
            "INSERT INTO t VALUES (NULL, 'NaN', 'quote \" and \\ and \x01', 0, 0.000001, NULL, NULL, NULL), "
            "(-1, '-inf', '', -0.01, -0.000001, false, DATE '0001-01-01', TIMESTAMP '1969-12-31 23:59:59.5')"
        )
    configuration = {"path": path.name}
    columnar = FilePool("duckdb", configuration, tmp_path, max_sessions=2, columnar=True)
    rows = FilePool("duckdb", configuration, tmp_path, max_sessions=2, columnar=False)
    yield columnar, rows


async def test_duckdb_columns_write_the_row_paths_bytes(duck: tuple[FilePool, FilePool]) -> None:
    columnar, rows = await _both(duck, "SELECT * FROM t ORDER BY id NULLS FIRST", page_bytes=30_000)
    _same(columnar, rows, took_columns=True)
    assert rows.summary is not None and rows.summary.count == 12002


async def test_duckdb_types_it_does_not_write_take_the_row_path(duck: tuple[FilePool, FilePool]) -> None:
    columnar, rows = await _both(duck, "SELECT id, 1.5::DECIMAL(20, 7) AS d, [id] AS l FROM t LIMIT 5")
    _same(columnar, rows, took_columns=False)


# -- the columnar connection: the connection's own credentials, to its own address -------------

_VALUE = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(username=_VALUE, password=_VALUE, database=_VALUE, hostname=_VALUE.filter(bool))
def test_the_connection_string_says_only_what_the_connection_holds(
    username: str, password: str, database: str, hostname: str
) -> None:
    configuration = {"hostname": hostname, "username": username, "password": password, "database": database}
    parsed = psycopg.conninfo.conninfo_to_dict(
        conninfo(configuration, "192.0.2.7", application_name="keyhole-query:c", timeout=5)
    )
    assert parsed["host"] == hostname and parsed["hostaddr"] == "192.0.2.7"
    assert parsed["user"] == username and parsed["password"] == password
    assert parsed["dbname"] == (database or "postgres")
    # Whatever the values spell, nothing else the server process holds can be named by them.
    assert parsed["passfile"] == parsed["sslcert"] == parsed["sslkey"] == "/nonexistent/keyhole"
    assert parsed["gssencmode"] == "disable"
    assert parsed["require_auth"] == "none,password,md5,scram-sha-256"
    assert parsed["sslrootcert"] == parsed["sslcrl"] == parsed["sslcrldir"] == "/nonexistent/keyhole"
    assert (
        parsed["sslcertmode"] == "disable" and parsed["options"] == "" and parsed["client_encoding"] == "UTF8"
    )
    assert "service" not in parsed


@dataclass
class Heard:
    """What a client told the fake server: its startup parameters and any password."""

    startup: dict[str, str] = field(default_factory=dict)
    passwords: list[bytes] = field(default_factory=list)


async def _password_asking_server(heard: Heard) -> asyncio.Server:
    """A PostgreSQL server that asks for a clear-text password and records what it is sent."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = struct.unpack("!I", await reader.readexactly(4))[0]
        body = await reader.readexactly(length - 4)
        if struct.unpack("!I", body[:4])[0] == 80877103:  # SSLRequest: no
            writer.write(b"N")
            length = struct.unpack("!I", await reader.readexactly(4))[0]
            body = await reader.readexactly(length - 4)
        pairs = body[4:].split(b"\x00")
        heard.startup.update(
            {pairs[i].decode(): pairs[i + 1].decode() for i in range(0, len(pairs) - 1, 2) if pairs[i]}
        )
        writer.write(b"R" + struct.pack("!II", 8, 3))
        await writer.drain()
        if await reader.read(1) == b"p":
            length = struct.unpack("!I", await reader.readexactly(4))[0]
            heard.passwords.append(await reader.readexactly(length - 4))
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _arrow_connect(configuration: dict[str, Any]) -> None:
    connections = ArrowConnections(
        configuration, LOOPBACK, keep=1, connect_timeout=3.0, application_name="keyhole-query:test"
    )
    await connections.acquire(DriverThread())


async def _asyncpg_connect(configuration: dict[str, Any]) -> None:
    await connect_postgresql(configuration, LOOPBACK, connect_timeout=3.0)


@pytest.mark.parametrize("connect", [_arrow_connect, _asyncpg_connect], ids=["columnar", "row"])
@pytest.mark.parametrize("password", [None, "", "the-connections-own"])
async def test_no_password_but_the_connections_own_is_ever_sent(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    password: str | None,
    connect: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    passfile = tmp_path / ".pgpass"
    passfile.write_text("*:*:*:*:from-the-servers-password-file\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSWORD", "from-the-servers-environment")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.setenv("PGOPTIONS", "-c search_path=elsewhere")
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    monkeypatch.setenv("HOME", str(tmp_path))
    heard = Heard()
    server = await _password_asking_server(heard)
    port = server.sockets[0].getsockname()[1]
    configuration: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": port,
        "username": "u",
        "ssl_mode": "disable",
    }
    if password is not None:
        configuration["password"] = password
    try:
        with pytest.raises(Exception):  # noqa: B017 - the fake server never lets anyone in
            await connect(configuration)
    finally:
        server.close()
        await server.wait_closed()
    if password:
        assert heard.passwords == [password.encode() + b"\x00"]
    else:  # nothing, or the empty password the connection has: never one of the server's own
        assert heard.passwords in ([], [b"\x00"])
    encoding = heard.startup.get("client_encoding", "utf8").strip("'").lower().replace("-", "")
    assert "elsewhere" not in str(heard.startup) and encoding == "utf8"


async def test_a_host_the_egress_policy_refuses_is_never_connected() -> None:
    configuration = {"hostname": "127.0.0.1", "port": 5432, "username": "postgres", "ssl_mode": "disable"}
    refusing = CheckingResolver(EgressPolicy([IPv4Network("10.0.0.0/8")]))
    connections = ArrowConnections(
        configuration, refusing, keep=1, connect_timeout=3.0, application_name="keyhole-query:test"
    )
    with pytest.raises(Exception, match=r"(?i)not allowed|denied|refused"):
        await connections.acquire(DriverThread())


async def test_duckdb_stored_columns_export_as_the_pages_do(duck: tuple[FilePool, FilePool]) -> None:
    columns = Columns()
    outcome = await _run(duck[0], "SELECT * FROM t ORDER BY id NULLS FIRST", columns=columns)
    summary = outcome.summary
    assert summary is not None and summary.columnar and summary.column_batches == len(columns.batches)
    schema = export_schema(summary.fields, summary.kinds)
    from_columns = pa.Table.from_batches([export_batch(batch, schema) for batch in columns.batches], schema)
    rows = [row for number in sorted(outcome.pages) for row in orjson.loads(outcome.pages[number])]
    assert _cells(from_columns) == _cells(pa.Table.from_batches([page_batch(rows, schema)], schema))


async def test_the_value_tests_types_read_the_same_on_both_paths(
    postgres: tuple[PostgresPool, PostgresPool], duck: tuple[FilePool, FilePool]
) -> None:
    from .test_files import DUCK_TYPES
    from .test_postgres import PG_TYPES

    for pools, sql in ((postgres, PG_TYPES), (duck, DUCK_TYPES)):
        columnar, rows = await _both(pools, sql)  # a column the encoder does not take: the row path
        _same(columnar, rows, took_columns=False)
    duck_columns = (
        "SELECT 1::TINYINT AS i1, 1.5::DOUBLE AS d, 'nan'::DOUBLE AS dn, 12.50::DECIMAL(10,2) AS dec, "
        "'héllo' AS s, DATE '2024-02-29' AS dt, TIMESTAMP '2024-02-29 13:14:15.123456' AS ts, "
        "NULL::VARCHAR AS n, 1 AS i1"
    )
    columnar, rows = await _both(duck, duck_columns)
    _same(columnar, rows, took_columns=True)


@pytest.mark.parametrize("after", [0.5, 1.0, 2.0])
async def test_a_run_cancelled_while_its_statement_starts_ends_cleanly(
    postgres: tuple[PostgresPool, PostgresPool], after: float
) -> None:
    """The worker cancels a run's task at shutdown or when its lease is lost: the driver's thread
    may then be inside its first read; nothing is closed under it, and the statement stops."""
    tag = f"keyhole/q/columnar-cancelled-{int(after * 10)}/1"
    sql = "SELECT g, 'x' AS s FROM generate_series(1, 100000) g WHERE pg_sleep(0.005)::text = ''"
    running = asyncio.create_task(_run(postgres[0], sql, tag=tag))
    await asyncio.sleep(after)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await _gone(tag)
    again = await _run(postgres[0], "SELECT 2 AS n")
    assert again.pages == {0: b'[{"n":2}]'} and again.summary is not None and again.summary.columnar


async def test_text_of_a_database_in_another_encoding_arrives_as_utf8() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute("DROP DATABASE IF EXISTS kh_columnar_latin1")
        await admin.execute(
            "CREATE DATABASE kh_columnar_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"
        )
        configuration = {**POSTGRES, "database": "kh_columnar_latin1"}
        pools = (
            PostgresPool(configuration, LOOPBACK, pool_size=1, connect_timeout=5.0, columnar=True),
            PostgresPool(configuration, LOOPBACK, pool_size=1, connect_timeout=5.0, columnar=False),
        )
        try:
            columnar, rows = await _both(pools, "SELECT 'café ÿ' AS t, 1 AS n")
            _same(columnar, rows, took_columns=True)
            assert rows.pages == {0: '[{"t":"café ÿ","n":1}]'.encode()}
        finally:
            for pool in pools:
                await pool.dispose()
    finally:
        await admin.execute("DROP DATABASE IF EXISTS kh_columnar_latin1 WITH (FORCE)")
        await admin.close()
