"""MariaDB (the MySQL type) through the official SDK: types, streaming, read-only, timeout,
cancel, errors, and a wrong password that never shows up anywhere."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import aiomysql
import httpx
import pytest
from polytomic import Polytomic

from conftest import KeyholeServer, Keys

from .support import MARIADB, rows_of, run, walk

MARIA_TYPES = """
SELECT 1 AS i, CAST(18446744073709551615 AS UNSIGNED) AS u64, 1.5e0 AS dbl,
  CAST(12.50 AS DECIMAL(10,2)) AS dec2, CAST('123456789012345678901234567890.5' AS DECIMAL(40,1)) AS big,
  'héllo' AS t, CAST('2024-02-29' AS DATE) AS d,
  CAST('2024-02-29 13:14:15.123456' AS DATETIME(6)) AS dt, CAST('838:59:59' AS TIME) AS tm,
  CAST(X'DEADBEEF' AS BINARY) AS bin, NULL AS nul, TRUE AS bool, 1 AS i
"""
MARIA_EXPECTED: dict[str, Any] = {
    "i": 1,
    "u64": 18446744073709551615,
    "dbl": 1.5,
    "dec2": "12.50",
    "big": "123456789012345678901234567890.5",
    "t": "héllo",
    "d": "2024-02-29",
    "dt": "2024-02-29T13:14:15.123456",
    "tm": "838:59:59",
    "bin": "3q2+7w==",
    "nul": None,
    "bool": 1,
    "i_2": 1,
}


def admin(statement: str) -> list[Any]:
    async def go() -> list[Any]:
        connection = await aiomysql.connect(
            host="127.0.0.1", port=3306, user="root", db="test", autocommit=True
        )
        try:
            async with connection.cursor() as cursor:
                with warnings.catch_warnings():  # "Unknown table" notes of DROP … IF EXISTS
                    warnings.simplefilter("ignore")
                    await cursor.execute(statement)
                return list(await cursor.fetchall())
        finally:
            connection.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def maria_tables(maria: str) -> Iterator[None]:
    admin("DROP TABLE IF EXISTS kh_query_ro, kh_query_ddl, kh_query_typed")
    admin("CREATE TABLE kh_query_ro (a INT)")
    admin(
        "CREATE TABLE kh_query_typed (j JSON, b BIT(4), ts TIMESTAMP NULL, blb BLOB, e ENUM('x','y'), y YEAR)"
    )
    admin(
        "INSERT INTO kh_query_typed VALUES "
        "('{\"k\": [1, 2]}', b'1010', '2024-02-29 13:14:15', X'00FF', 'y', 2024)"
    )
    yield
    admin("DROP TABLE IF EXISTS kh_query_ro, kh_query_ddl, kh_query_typed")


def test_type_matrix(client: Polytomic, maria: str, maria_tables: None) -> None:
    result = run(client, maria, MARIA_TYPES)
    assert result.data.status == "done", result.data.error
    assert result.data.fields == list(MARIA_EXPECTED)
    assert result.data.results == [MARIA_EXPECTED]
    [row] = rows_of(client, maria, "SELECT * FROM kh_query_typed")
    # MariaDB's JSON is LONGTEXT with a check: it arrives as the document's text
    assert row == {
        "j": '{"k": [1, 2]}',
        "b": 10,
        "ts": "2024-02-29T13:14:15",
        "blb": "AP8=",
        "e": "y",
        "y": 2024,
    }


def test_rows_stream_in_order_across_pages(client: Polytomic, maria: str) -> None:
    # MariaDB's sequence engine (a recursive CTE stops at max_recursive_iterations = 1000)
    result = run(client, maria, "SELECT seq AS n FROM seq_1_to_5500 ORDER BY seq")
    walked = walk(client, result.data.id)
    assert walked.count == 5500 and walked.pages == 6
    assert [row["n"] for row in walked.rows] == list(range(1, 5501))


def test_read_only_refuses_insert_and_ddl(client: Polytomic, maria: str, maria_tables: None) -> None:
    insert = run(client, maria, "INSERT INTO kh_query_ro VALUES (1)")
    assert insert.data.status == "failed"
    assert "READ ONLY transaction" in insert.data.error
    # DDL would commit implicitly and slip out of START TRANSACTION READ ONLY alone
    ddl = run(client, maria, "CREATE TABLE kh_query_ddl (a INT)")
    assert ddl.data.status == "failed" and "READ ONLY" in ddl.data.error
    multi = run(client, maria, "COMMIT; INSERT INTO kh_query_ro VALUES (2)")
    assert multi.data.status == "failed" and "syntax" in multi.data.error
    assert admin("SELECT count(*) FROM kh_query_ro")[0][0] == 0
    assert not admin("SHOW TABLES LIKE 'kh_query_ddl'")


def test_timeout_and_cancel(
    qserver: KeyholeServer, alice: Keys, client: Polytomic, maria: str, make_connection: Callable[..., str]
) -> None:
    short = make_connection("mysql", {**MARIADB, "query": {"statement_timeout_ms": 1000}})
    timed_out = run(client, short, "SELECT SLEEP(20)")
    assert timed_out.data.status == "failed" and "max_statement_time" in timed_out.data.error

    submitted = client.query_runner.run_query(connection_id=maria, query="SELECT SLEEP(60) AS slept")
    running = (  # the statement as sent, behind the attempt's tag
        "SELECT id FROM information_schema.processlist"
        f" WHERE info = '/* keyhole/q/{submitted.data.id}/1 */ SELECT SLEEP(60) AS slept'"
    )
    deadline = time.monotonic() + 20
    while not admin(running):
        assert time.monotonic() < deadline, "the statement never started"
        time.sleep(0.05)
    started = time.monotonic()
    with httpx.Client(base_url=qserver.url, headers=alice.bearer, timeout=30) as http:
        cancelled = http.delete(f"/api/queries/{submitted.data.id}")
    assert cancelled.json()["data"]["status"] == "failed" and cancelled.json()["data"]["error"] == "cancelled"
    assert time.monotonic() - started < 5
    assert not admin(running)
    assert rows_of(client, maria, "SELECT 42 AS answer") == [{"answer": 42}]


def test_sql_error_and_wrong_password_not_leaked(
    qserver: KeyholeServer, client: Polytomic, maria: str, make_connection: Callable[..., str]
) -> None:
    error = run(client, maria, "SELECT * FROM kh_no_such_table")
    assert error.data.status == "failed" and "kh_no_such_table' doesn't exist" in error.data.error
    password = "S3cret-Pass/word@kh"
    wrong = make_connection("mysql", {**MARIADB, "password": password}, validate=False)
    result = run(client, wrong, "SELECT 1")
    assert result.data.status == "failed"
    assert "Access denied" in result.data.error
    assert password not in result.data.error and "S3cret" not in result.data.error
    assert "S3cret" not in qserver.logs()
