"""PostgreSQL through the official SDK: types, pages, limits, read-only, timeout, cancel, errors."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from polytomic import Polytomic

from conftest import KeyholeServer, Keys

from .conftest import PAGE_ROWS
from .support import POSTGRES, admin, page_token, rows_of, run, sdk, wait, walk

PG_TYPES = """
SELECT
  1::smallint AS i2, 2147483647::int AS i4, 9223372036854775807::bigint AS i8,
  1.5::real AS f4, 0.1::float8 AS f8, 'NaN'::float8 AS fnan, '-Infinity'::float8 AS fninf,
  12345678901234567890.123456789::numeric AS num, 12.50::numeric(10,2) AS num2, 'NaN'::numeric AS numnan,
  true AS b, 'héllo'::text AS t, 'ab'::char(3) AS c, 'x'::varchar(5) AS vc,
  '2024-02-29'::date AS d, '13:14:15.5'::time AS tm, '13:14:15+02'::timetz AS tmz,
  '2024-02-29 13:14:15.123456'::timestamp AS ts, '2024-02-29 13:14:15.5+02'::timestamptz AS tstz,
  '1 year 2 mons 3 days 04:05:06.5'::interval AS iv, '-1 day'::interval AS ivneg,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '\\xdeadbeef'::bytea AS by,
  ARRAY[1,2,NULL]::int[] AS ai, ARRAY[['a','b'],['c','d']] AS a2, ARRAY[1.5,2.25]::numeric[] AS an,
  ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid] AS au,
  '{"k": [1, 2.5, null, "s"]}'::jsonb AS jb, '[1, {"a": true}]'::json AS j,
  NULL::int AS nul, '192.168.0.1/24'::inet AS ip, int4range(1, 5) AS r, 'b'::"char" AS ch,
  B'101' AS bits, point(1, 2) AS pt, ROW(1, 'a') AS rec, 1 AS i2
"""

PG_EXPECTED: dict[str, Any] = {
    "i2": 1,
    "i4": 2147483647,
    "i8": 9223372036854775807,
    "f4": 1.5,
    "f8": 0.1,
    "fnan": "NaN",
    "fninf": "-Infinity",
    "num": "12345678901234567890.123456789",
    "num2": "12.50",
    "numnan": "NaN",
    "b": True,
    "t": "héllo",
    "c": "ab ",
    "vc": "x",
    "d": "2024-02-29",
    "tm": "13:14:15.500000",
    "tmz": "13:14:15+02",
    "ts": "2024-02-29T13:14:15.123456",
    "tstz": "2024-02-29T11:14:15.500000Z",
    "iv": "P1Y2M3DT4H5M6.5S",
    "ivneg": "P-1D",
    "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "by": "3q2+7w==",
    "ai": [1, 2, None],
    "a2": [["a", "b"], ["c", "d"]],
    "an": ["1.5", "2.25"],
    "au": ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
    "jb": {"k": [1, 2.5, None, "s"]},
    "j": [1, {"a": True}],
    "nul": None,
    "ip": "192.168.0.1/24",
    "r": "[1,5)",
    "ch": "b",
    "bits": "101",
    "pt": "(1,2)",
    "rec": [1, "a"],
    "i2_2": 1,
}


@pytest.fixture(scope="module")
def tables(pg: str) -> Iterator[None]:
    admin("DROP TABLE IF EXISTS kh_query_ro, kh_query_rw")
    admin("CREATE TABLE kh_query_ro (a int)")
    admin("CREATE TABLE kh_query_rw (a int)")
    yield
    admin("DROP TABLE IF EXISTS kh_query_ro, kh_query_rw, kh_query_ddl")


def test_type_matrix(client: Polytomic, pg: str) -> None:
    result = run(client, pg, PG_TYPES)
    assert result.data.status == "done", result.data.error
    assert result.data.fields == list(PG_EXPECTED)  # column order kept, duplicates suffixed
    assert result.data.count == 1
    assert result.data.results == [PG_EXPECTED]
    assert result.links.next is None and result.links.previous is None
    assert result.data.expires and result.data.expires.endswith("Z")


def test_empty_result_has_fields_and_no_rows(client: Polytomic, pg: str) -> None:
    result = run(client, pg, "SELECT 1 AS one, 'x' AS two WHERE false")
    assert (result.data.status, result.data.fields, result.data.count, result.data.results) == (
        "done",
        ["one", "two"],
        0,
        [],
    )


def test_submit_returns_at_once_with_created(client: Polytomic, pg: str) -> None:
    started = time.monotonic()
    submitted = client.query_runner.run_query(connection_id=pg, query="SELECT pg_sleep(2)")
    assert time.monotonic() - started < 1.5
    assert submitted.data.status == "created" and submitted.data.id
    running = client.query_runner.get_query(id=submitted.data.id)
    assert running.data.status in {"created", "running"}
    assert running.data.results is None and running.data.fields is None
    assert wait(client, submitted.data.id).data.status == "done"


def test_25000_rows_across_many_pages_in_order(client: Polytomic, pg: str) -> None:
    result = run(client, pg, "SELECT g AS n, md5(g::text) AS h FROM generate_series(1, 25000) g ORDER BY g")
    assert result.data.status == "done", result.data.error
    assert len(result.data.results) == PAGE_ROWS
    walked = walk(client, result.data.id)
    assert walked.count == 25000 and walked.fields == ["n", "h"]
    assert walked.pages == 25000 // PAGE_ROWS
    assert [row["n"] for row in walked.rows] == list(range(1, 25001))
    assert walked.rows[41]["h"] == "a1d0c6e83f027327d8461063f4ac58a6"  # md5('42')


def test_links_work_for_raw_http_and_percent_encoded_tokens(
    qserver: KeyholeServer, alice: Keys, client: Polytomic, pg: str
) -> None:
    result = run(client, pg, "SELECT g FROM generate_series(1, 2500) g ORDER BY g")
    with httpx.Client(base_url=qserver.url, headers=alice.bearer, timeout=30) as http:
        first = http.get(f"/api/queries/{result.data.id}")
        assert first.status_code == 200 and first.headers["content-type"].startswith("application/json")
        body = first.json()
        assert body["data"]["results"][0] == {"g": 1}
        second = http.get(body["links"]["next"])  # the host-relative link, followed as is
        assert second.json()["data"]["results"][0] == {"g": PAGE_ROWS + 1}
        token = page_token(second.json()["links"]["next"])
        encoded = "".join(f"%{ord(char):02X}" for char in token)  # every character percent-encoded
        third = http.get(f"/api/queries/{result.data.id}?page={encoded}")
        assert third.json()["data"]["results"][0] == {"g": 2 * PAGE_ROWS + 1}
        assert third.json()["links"]["next"] is None
        back = http.get(third.json()["links"]["previous"])
        assert back.json()["data"]["results"] == second.json()["data"]["results"]


def test_limits_truncate_with_flag(
    client: Polytomic, make_connection: Callable[..., str], qserver: KeyholeServer, alice: Keys
) -> None:
    capped = make_connection("postgresql", {**POSTGRES, "query": {"max_rows": 10}})
    result = run(client, capped, "SELECT generate_series(1, 100) AS n")
    assert (result.data.status, result.data.count) == ("done", 10)
    assert [row["n"] for row in result.data.results] == list(range(1, 11))
    exact = run(client, capped, "SELECT generate_series(1, 10) AS n")
    bytes_capped = make_connection("postgresql", {**POSTGRES, "query": {"max_bytes": 1000}})
    small = run(client, bytes_capped, "SELECT repeat('x', 100) AS s FROM generate_series(1, 100)")
    assert small.data.status == "done" and 0 < small.data.count < 10
    with httpx.Client(base_url=qserver.url, headers=alice.bearer) as http:
        assert http.get(f"/api/queries/{result.data.id}").json()["data"]["truncated"] is True
        assert http.get(f"/api/queries/{exact.data.id}").json()["data"]["truncated"] is False
        assert http.get(f"/api/queries/{small.data.id}").json()["data"]["truncated"] is True


def test_statement_timeout_is_enforced_by_the_database(
    client: Polytomic, make_connection: Callable[..., str]
) -> None:
    short = make_connection("postgresql", {**POSTGRES, "query": {"statement_timeout_ms": 1000}})
    started = time.monotonic()
    result = run(client, short, "SELECT pg_sleep(20)")
    assert result.data.status == "failed"
    assert "canceling statement due to statement timeout" in result.data.error
    assert time.monotonic() - started < 10


def test_cancel_stops_pg_sleep_at_the_database(
    qserver: KeyholeServer, alice: Keys, client: Polytomic, pg: str
) -> None:
    submitted = client.query_runner.run_query(connection_id=pg, query="SELECT pg_sleep(60)")
    query_id = submitted.data.id
    application = f"keyhole/q/{query_id}/1"  # the attempt's tag
    deadline = time.monotonic() + 20
    while not admin(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' "
        "AND query = 'SELECT pg_sleep(60)'",
        application,
    ):
        assert time.monotonic() < deadline, "the statement never started"
        time.sleep(0.05)
    assert client.query_runner.get_query(id=query_id).data.status == "running"
    started = time.monotonic()
    with httpx.Client(base_url=qserver.url, headers=alice.bearer, timeout=30) as http:
        cancelled = http.delete(f"/api/queries/{query_id}")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["data"]["status"], cancelled.json()["data"]["error"]) == ("failed", "cancelled")
    assert time.monotonic() - started < 5
    # the backend is no longer sleeping: the cancel reached PostgreSQL
    assert not admin(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query = 'SELECT pg_sleep(60)' "
        "AND state = 'active'",
        application,
    )
    final = client.query_runner.get_query(id=query_id)
    assert (final.data.status, final.data.error) == ("failed", "cancelled")
    # the pooled connection is still good
    assert rows_of(client, pg, "SELECT 41 + 1 AS answer") == [{"answer": 42}]
    with httpx.Client(base_url=qserver.url, headers=alice.bearer, timeout=30) as http:
        again = http.delete(f"/api/queries/{query_id}")  # idempotent
        assert again.status_code == 200 and again.json()["data"]["error"] == "cancelled"
        done = run(client, pg, "SELECT 1")
        finished = http.delete(f"/api/queries/{done.data.id}")
        assert finished.status_code == 409 and finished.json()["key"] == "query_finished"


def test_read_only_refuses_insert_and_ddl(client: Polytomic, pg: str, tables: None) -> None:
    insert = run(client, pg, "INSERT INTO kh_query_ro VALUES (1)")
    assert insert.data.status == "failed"
    assert "cannot execute INSERT in a read-only transaction" in insert.data.error
    ddl = run(client, pg, "CREATE TABLE kh_query_ddl (a int)")
    assert ddl.data.status == "failed" and "read-only transaction" in ddl.data.error
    escape = run(client, pg, "COMMIT; INSERT INTO kh_query_ro VALUES (2)")
    assert escape.data.status == "failed" and "multiple commands" in escape.data.error
    returning = run(client, pg, "WITH w AS (INSERT INTO kh_query_ro VALUES (3) RETURNING a) SELECT * FROM w")
    assert returning.data.status == "failed" and "read-only" in returning.data.error
    assert admin("SELECT count(*) FROM kh_query_ro")[0][0] == 0
    assert not admin("SELECT 1 FROM pg_tables WHERE tablename = 'kh_query_ddl'")


def test_read_write_connection_commits(
    client: Polytomic, make_connection: Callable[..., str], tables: None
) -> None:
    writable = make_connection("postgresql", {**POSTGRES, "query": {"read_only": False}})
    result = run(client, writable, "INSERT INTO kh_query_rw VALUES (7)")
    assert (result.data.status, result.data.fields, result.data.count) == ("done", [], 0)
    returning = run(client, writable, "INSERT INTO kh_query_rw VALUES (8) RETURNING a")
    assert returning.data.results == [{"a": 8}]
    assert sorted(row[0] for row in admin("SELECT a FROM kh_query_rw")) == [7, 8]


def test_sql_error_fails_with_the_database_message(client: Polytomic, pg: str) -> None:
    result = run(client, pg, "SELECT * FROM kh_no_such_table")
    assert result.data.status == "failed"
    assert 'relation "kh_no_such_table" does not exist' in result.data.error
    assert result.data.results is None
    placeholders = run(client, pg, "SELECT $1::int")
    assert placeholders.data.status == "failed" and "placeholders" in placeholders.data.error


def test_unreachable_and_refused_hosts_fail_fast_and_clearly(
    client: Polytomic, make_connection: Callable[..., str]
) -> None:
    closed = make_connection("postgresql", {**POSTGRES, "port": 1}, validate=False)
    started = time.monotonic()
    result = run(client, closed, "SELECT 1")
    assert result.data.status == "failed"
    assert result.data.error.startswith("could not connect to the database")
    assert time.monotonic() - started < 15
    private = make_connection("postgresql", {**POSTGRES, "hostname": "10.255.255.1"}, validate=False)
    denied = run(client, private, "SELECT 1")
    assert denied.data.status == "failed" and "not allowed" in denied.data.error


def test_changing_or_deleting_a_connection_disposes_its_pool(
    client: Polytomic, make_connection: Callable[..., str]
) -> None:
    connection_id = make_connection("postgresql", dict(POSTGRES))
    application = f"keyhole-query:{connection_id}"
    assert rows_of(client, connection_id, "SELECT 1 AS one") == [{"one": 1}]
    assert admin("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application)[0][0] >= 1
    client.connections.update(
        id=connection_id, name="capped", configuration={**POSTGRES, "query": {"max_rows": 3}}
    )
    assert len(rows_of(client, connection_id, "SELECT generate_series(1, 10) AS n")) == 3
    client.connections.delete(id=connection_id)
    deadline = time.monotonic() + 10
    while admin("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application)[0][0]:
        assert time.monotonic() < deadline, "the pool of a deleted connection kept its connections"
        time.sleep(0.1)


def test_a_database_that_never_answers_fails_after_the_connect_timeout(
    make_server: Callable[..., Any],
) -> None:
    """A listener that accepts and then says nothing (a hung server, a black hole behind NAT)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        server = make_server(KEYHOLE_QUERY_CONNECT_TIMEOUT_SECONDS="1")
        keys = server.bootstrap("silent-org", "silent@silent.test")
        client = sdk(server, keys.user_api_key)
        connection_id = client.connections.create(
            name="silent",
            type="postgresql",
            configuration={**POSTGRES, "port": silent.getsockname()[1]},
            validate=False,
        ).data.id
        started = time.monotonic()
        result = run(client, connection_id, "SELECT 1", timeout=60)
        assert result.data.status == "failed"
        assert (
            result.data.error == "could not connect to the database: no answer within 1 s (connect timeout)"
        )
        assert time.monotonic() - started < 15
