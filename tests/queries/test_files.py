"""SQLite and DuckDB files under KEYHOLE_SQL_FILE_ROOT: types, read-only, no escape to other
files, timeouts and cancellation by ``interrupt()``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from polytomic import Polytomic

from conftest import KeyholeServer, Keys

from .support import rows_of, run, walk

SLOW_SQLITE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
SLOW_DUCKDB = "SELECT count(*) FROM range(100000000000) a"

DUCK_TYPES = """
SELECT 1::TINYINT AS i1, 170141183460469231731687303715884105727::HUGEINT AS huge, 1.5::DOUBLE AS d,
  'nan'::DOUBLE AS dn, 12.50::DECIMAL(10,2) AS dec, 'héllo' AS s, DATE '2024-02-29' AS dt,
  TIME '13:14:15.5' AS tm, TIMESTAMP '2024-02-29 13:14:15.123456' AS ts,
  TIMESTAMPTZ '2024-02-29 13:14:15+02' AS tstz, INTERVAL 1 DAY + INTERVAL 2 HOUR AS iv,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID AS u, '\\xDE\\xAD'::BLOB AS b, [1, 2, NULL] AS l,
  {'k': 1, 'v': [1.5::DOUBLE]} AS st, MAP {'a': 1} AS m, '{"x": [1]}'::JSON AS j, NULL AS n,
  [170141183460469231731687303715884105727::HUGEINT] AS hl, 1 AS i1
"""
DUCK_EXPECTED = {
    "i1": 1,
    "huge": "170141183460469231731687303715884105727",
    "d": 1.5,
    "dn": "NaN",
    "dec": "12.50",
    "s": "héllo",
    "dt": "2024-02-29",
    "tm": "13:14:15.500000",
    "ts": "2024-02-29T13:14:15.123456",
    "tstz": "2024-02-29T11:14:15Z",
    "iv": "P1DT2H",
    "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "b": "3q0=",
    "l": [1, 2, None],
    "st": {"k": 1, "v": [1.5]},
    "m": {"a": 1},
    "j": {"x": [1]},
    "n": None,
    "hl": ["170141183460469231731687303715884105727"],
    "i1_2": 1,
}


def test_sqlite_types_and_pages(client: Polytomic, sqlite_conn: str) -> None:
    rows = rows_of(client, sqlite_conn, "SELECT *, 1e999 AS inf, id AS id FROM items ORDER BY id")
    assert rows == [
        {"id": 1, "name": "one", "price": 1.5, "data": "AAE=", "inf": "Infinity", "id_2": 1},
        {"id": 2, "name": "two", "price": None, "data": None, "inf": "Infinity", "id_2": 2},
        {"id": 3, "name": "três", "price": 3.25, "data": "/w==", "inf": "Infinity", "id_2": 3},
    ]
    many = run(
        client,
        sqlite_conn,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3500) SELECT x FROM c",
    )
    walked = walk(client, many.data.id)
    assert walked.pages == 4 and [row["x"] for row in walked.rows] == list(range(1, 3501))


def test_sqlite_read_only_and_no_other_files(client: Polytomic, sqlite_conn: str, sql_root: Path) -> None:
    insert = run(client, sqlite_conn, "INSERT INTO items VALUES (9, 'nine', 9, NULL)")
    assert insert.data.status == "failed" and "readonly database" in insert.data.error
    ddl = run(client, sqlite_conn, "CREATE TABLE other (a)")
    assert ddl.data.status == "failed" and "readonly database" in ddl.data.error
    for sql in (f"ATTACH '{sql_root / 'x.db'}' AS x", f"VACUUM INTO '{sql_root / 'copy.db'}'"):
        escaped = run(client, sqlite_conn, sql)
        assert escaped.data.status == "failed", sql
    assert not (sql_root / "x.db").exists() and not (sql_root / "copy.db").exists()
    assert len(rows_of(client, sqlite_conn, "SELECT * FROM items")) == 3


def test_sqlite_timeout_and_cancel(
    qserver: KeyholeServer,
    alice: Keys,
    client: Polytomic,
    sqlite_conn: str,
    sqlite_file: Path,
    make_connection: Callable[..., str],
) -> None:
    short = make_connection("sqlite", {"path": sqlite_file.name, "query": {"statement_timeout_ms": 1000}})
    started = time.monotonic()
    timed_out = run(client, short, SLOW_SQLITE)
    assert timed_out.data.status == "failed" and "statement timeout" in timed_out.data.error
    assert time.monotonic() - started < 10
    _cancel(qserver, alice, client, sqlite_conn, SLOW_SQLITE)


def test_duckdb_types(client: Polytomic, duck_conn: str) -> None:
    result = run(client, duck_conn, DUCK_TYPES)
    assert result.data.status == "done", result.data.error
    assert result.data.fields == list(DUCK_EXPECTED)
    assert result.data.results == [DUCK_EXPECTED]
    assert rows_of(client, duck_conn, "SELECT * FROM items ORDER BY id") == [
        {"id": 1, "name": "one", "price": "1.50"},
        {"id": 2, "name": "two", "price": None},
        {"id": 3, "name": "three", "price": "3.25"},
    ]


def test_duckdb_read_only_and_no_external_access(client: Polytomic, duck_conn: str) -> None:
    insert = run(client, duck_conn, "INSERT INTO items VALUES (9, 'nine', 9)")
    assert insert.data.status == "failed" and "read-only" in insert.data.error
    ddl = run(client, duck_conn, "CREATE TABLE other (a INT)")
    assert ddl.data.status == "failed" and "read-only" in ddl.data.error
    outside = run(client, duck_conn, "SELECT * FROM read_csv('/etc/passwd')")
    assert outside.data.status == "failed" and "disabled by configuration" in outside.data.error


def test_duckdb_streams_pages_timeout_and_cancel(
    qserver: KeyholeServer,
    alice: Keys,
    client: Polytomic,
    duck_conn: str,
    duckdb_file: Path,
    make_connection: Callable[..., str],
) -> None:
    many = run(client, duck_conn, "SELECT range AS n FROM range(4200) ORDER BY n")
    walked = walk(client, many.data.id)
    assert walked.pages == 5 and [row["n"] for row in walked.rows] == list(range(4200))
    short = make_connection("duckdb", {"path": duckdb_file.name, "query": {"statement_timeout_ms": 1000}})
    timed_out = run(client, short, SLOW_DUCKDB)
    assert timed_out.data.status == "failed" and "statement timeout" in timed_out.data.error
    _cancel(qserver, alice, client, duck_conn, SLOW_DUCKDB)


def test_file_outside_the_root_is_refused(client: Polytomic) -> None:
    from polytomic.errors import UnprocessableEntityError

    try:
        client.connections.create(name="escape", type="sqlite", configuration={"path": "/etc/passwd"})
    except UnprocessableEntityError as error:
        assert "KEYHOLE_SQL_FILE_ROOT" in str(error.body)
    else:  # pragma: no cover
        raise AssertionError("a file outside the root was accepted")


def _cancel(qserver: KeyholeServer, alice: Keys, client: Polytomic, connection_id: str, sql: str) -> None:
    submitted = client.query_runner.run_query(connection_id=connection_id, query=sql)
    deadline = time.monotonic() + 20
    while client.query_runner.get_query(id=submitted.data.id).data.status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # inside the engine by now
    started = time.monotonic()
    with httpx.Client(base_url=qserver.url, headers=alice.bearer, timeout=30) as http:
        cancelled = http.delete(f"/api/queries/{submitted.data.id}")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["data"]["status"], cancelled.json()["data"]["error"]) == ("failed", "cancelled")
    assert time.monotonic() - started < 5
