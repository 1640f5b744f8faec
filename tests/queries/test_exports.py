"""Whole-result exports (``GET /api/queries/{id}/export``): each format read back and compared
with the pages, owner-only and expiring like them, refused formats, the stored copy with its length
and byte ranges, a download cut short, and a result larger than the memory bound in flat memory."""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest
from polytomic import Polytomic

from conftest import KeyholeServer, Keys

from .conftest import mint_key
from .support import POSTGRES, run, sdk, status_kib, wait
from .test_memory import Sampler

MIB = 1024 * 1024
FORMATS = ("csv", "ndjson", "parquet", "arrow")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}
EXTENSIONS = {"csv": "csv", "ndjson": "ndjson", "parquet": "parquet", "arrow": "arrows"}
JSON_LINE = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE

POSTGRES_SQL = """
SELECT g AS id,
  CASE WHEN g % 7 = 1 THEN NULL ELSE (g % 30000 - 15000)::int2 END AS i2,
  CASE WHEN g % 7 = 2 THEN NULL ELSE (g * 1000)::int4 END AS i4,
  CASE WHEN g % 7 = 3 THEN NULL WHEN g = 4 THEN 9223372036854775807 WHEN g = 5 THEN -9223372036854775808
    ELSE g::int8 * 3000000000 END AS i8,
  CASE WHEN g % 7 = 4 THEN NULL WHEN g % 11 = 0 THEN 'NaN'::float8 WHEN g % 11 = 1 THEN 'Infinity'::float8
    WHEN g % 11 = 2 THEN '-Infinity'::float8 ELSE g / 7.0::float8 END AS f8,
  CASE WHEN g % 7 = 5 THEN NULL ELSE g::numeric / 8 END AS num,
  CASE WHEN g % 7 = 6 THEN NULL ELSE 'row "' || g || '", a,b' || E'\\r\\n' || 'ünï ✓ =1+' || g END AS txt,
  CASE WHEN g % 5 = 0 THEN NULL ELSE g % 2 = 0 END AS flag,
  CASE WHEN g % 6 = 0 THEN NULL ELSE date '2024-02-29' + g END AS day,
  CASE WHEN g % 8 = 0 THEN NULL WHEN g % 2 = 0 THEN timestamp '2024-02-29 13:14:15' + g * interval '1 second'
    ELSE timestamp '2024-02-29 13:14:15.123456' + g * interval '1 millisecond' END AS ts,
  CASE WHEN g % 9 = 0 THEN NULL
    WHEN g % 2 = 0 THEN timestamptz '2024-02-29 13:14:15+02' + g * interval '1 minute'
    ELSE timestamptz '2024-02-29 13:14:15.5+02' + g * interval '1 millisecond' END AS tstz,
  CASE WHEN g % 10 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END AS bin,
  CASE WHEN g % 12 = 0 THEN NULL ELSE md5(g::text)::uuid END AS uid,
  CASE WHEN g % 13 = 0 THEN NULL
    ELSE jsonb_build_object('n', g, 's', 'x,"y"', 'l', jsonb_build_array(1, null)) END AS doc,
  CASE WHEN g % 14 = 0 THEN NULL ELSE ARRAY[g, NULL, -g]::int[] END AS ints
FROM generate_series(1, 2500) g ORDER BY g
"""
POSTGRES_TYPES = {
    "id": pa.int64(),
    "i2": pa.int64(),
    "i4": pa.int64(),
    "i8": pa.int64(),
    "f8": pa.float64(),
    "num": pa.string(),
    "txt": pa.string(),
    "flag": pa.bool_(),
    "day": pa.date32(),
    "ts": pa.timestamp("us"),
    "tstz": pa.timestamp("us", tz="UTC"),
    "bin": pa.binary(),
    "uid": pa.string(),
    "doc": pa.string(),
    "ints": pa.string(),
}

MARIADB_SQL = """
WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 1500)
SELECT g AS id,
  IF(g % 5 = 0, NULL, CAST(18446744073709551615 - g AS UNSIGNED)) AS u64,
  IF(g % 6 = 0, NULL, g / 3e0) AS dbl,
  IF(g % 7 = 0, NULL, CAST(g / 8 AS DECIMAL(12, 3))) AS dec3,
  IF(g % 8 = 0, NULL, CONCAT('héllo, "', g, '"\\n')) AS t,
  IF(g % 9 = 0, NULL, DATE_ADD(DATE '2024-02-29', INTERVAL g DAY)) AS d,
  IF(g % 10 = 0, NULL, TIMESTAMP '2024-02-29 13:14:15' + INTERVAL g SECOND) AS dt,
  IF(g % 11 = 0, NULL, UNHEX(MD5(g))) AS bin,
  IF(g % 12 = 0, NULL, JSON_OBJECT('n', g)) AS doc
FROM s ORDER BY g
"""
MARIADB_TYPES = {
    "id": pa.int64(),
    "u64": pa.decimal128(20, 0),
    "dbl": pa.float64(),
    "dec3": pa.string(),
    "t": pa.string(),
    "d": pa.date32(),
    "dt": pa.timestamp("us"),
    "bin": pa.string(),  # a BLOB is text in MySQL's protocol: its base64 as a string
    "doc": pa.string(),
}

DUCKDB_SQL = """
SELECT i AS id,
  CASE WHEN i % 5 = 0 THEN NULL ELSE (i * 1000000000000)::UBIGINT END AS big,
  CASE WHEN i % 6 = 0 THEN NULL WHEN i % 7 = 0 THEN 'nan'::DOUBLE ELSE i / 3.0 END AS x,
  CASE WHEN i % 4 = 0 THEN NULL ELSE i % 2 = 0 END AS flag,
  CASE WHEN i % 8 = 0 THEN NULL ELSE DATE '2024-02-29' + i::INTEGER END AS day,
  CASE WHEN i % 9 = 0 THEN NULL ELSE TIMESTAMP '2024-02-29 13:14:15.25' + i * INTERVAL 1 SECOND END AS ts,
  CASE WHEN i % 10 = 0 THEN NULL ELSE ('\\x00\\xff' || i::VARCHAR)::BLOB END AS data,
  CASE WHEN i % 11 = 0 THEN NULL ELSE 'ñ,"' || i || '"' END AS name,
  [i, NULL] AS list
FROM range(1, 1501) t(i) ORDER BY i
"""
DUCKDB_TYPES = {
    "id": pa.int64(),
    "big": pa.decimal128(20, 0),
    "x": pa.float64(),
    "flag": pa.bool_(),
    "day": pa.date32(),
    "ts": pa.timestamp("us"),
    "data": pa.binary(),
    "name": pa.string(),
    "list": pa.string(),
}

SQLITE_SQL = """
WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 1200)
SELECT g AS id, 'n,"' || g || '"' AS name, CASE WHEN g % 3 = 0 THEN NULL ELSE g * 0.25 END AS x,
  CASE WHEN g % 4 = 0 THEN NULL ELSE x'00ff' END AS data, 1e999 AS inf
FROM s
"""


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(qserver: KeyholeServer, alice: Keys) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=qserver.url, headers=alice.bearer, timeout=120) as client:
        yield client


def _pages(http: httpx.Client, query_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The fields and every row, read through the pages."""
    link: str | None = f"/api/queries/{query_id}"
    rows: list[dict[str, Any]] = []
    fields: list[str] = []
    while link:
        body = orjson.loads(http.get(link).content)
        fields = body["data"]["fields"]
        rows.extend(body["data"]["results"])
        link = body["links"]["next"]
    return fields, rows


def _export(http: httpx.Client, query_id: str, file_format: str, **headers: str) -> httpx.Response:
    return http.get(f"/api/queries/{query_id}/export", params={"format": file_format}, headers=headers)


def _page_form(value: Any) -> Any:
    """A typed value of a Parquet or Arrow export as the pages write it in JSON."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _text(value: Any) -> str | None:
    """A page value as a text column holds it: strings as they are, anything else as JSON."""
    return value if value is None or isinstance(value, str) else orjson.dumps(value).decode()


def _check_typed(
    table: pa.Table, fields: list[str], rows: list[dict[str, Any]], types: dict[str, Any]
) -> None:
    assert table.schema.names == fields
    assert {field.name: field.type for field in table.schema} == types
    assert table.num_rows == len(rows)
    for name in fields:
        text = pa.types.is_string(types[name])
        column = [_page_form(value) for value in table.column(name).to_pylist()]
        expected = [_text(row[name]) if text else row[name] for row in rows]
        assert column == expected, name


def _check_round_trip(
    http: httpx.Client, query_id: str, types: dict[str, Any] | None = None, *, pages_at_least: int = 2
) -> None:
    fields, rows = _pages(http, query_id)
    assert len(rows) > (pages_at_least - 1) * 1000, "the result must span several pages"
    types = types or dict.fromkeys(fields, pa.string())
    for file_format in FORMATS:
        response = _export(http, query_id, file_format)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == MEDIA_TYPES[file_format]
        assert response.headers["content-disposition"] == (
            f'attachment; filename="query-{query_id}.{EXTENSIONS[file_format]}"'
        )
        assert response.headers["cache-control"] == "private, no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        body = response.content
        if file_format == "csv":
            records = list(csv.reader(io.StringIO(body.decode(), newline="")))
            assert body.endswith(b"\r\n") and records[0] == fields
            assert records[1:] == [[_text(row[name]) or "" for name in fields] for row in rows]
        elif file_format == "ndjson":
            assert body == b"".join(orjson.dumps(row, option=JSON_LINE) for row in rows)
            assert [orjson.loads(line) for line in body.splitlines()] == rows
        elif file_format == "parquet":
            _check_typed(pq.read_table(pa.BufferReader(body)), fields, rows, types)
        else:
            _check_typed(pyarrow.ipc.open_stream(body).read_all(), fields, rows, types)
        again = _export(http, query_id, file_format)  # from the stored copy: the same bytes
        assert again.content == body and again.headers["content-length"] == str(len(body))


def _done(client: Polytomic, connection_id: str, sql: str) -> str:
    result = run(client, connection_id, sql)
    assert result.data.status == "done", result.data.error
    return str(result.data.id)


def _stored_files(server: KeyholeServer, query_id: str) -> list[Path]:
    return sorted((server.home / "blobs" / "queries" / query_id).rglob("*"))


def _blob_rows(server: KeyholeServer, query_id: str) -> list[tuple[str, int | None]]:
    """The blob rows of a query (key, size: None while a write goes on), from the server's store."""
    with contextlib.closing(sqlite3.connect(f"file:{server.home / 'keyhole.db'}?mode=ro", uri=True)) as db:
        found = db.execute(
            "SELECT key, size FROM blobs WHERE key LIKE ? ORDER BY key", (f"queries/{query_id}/%",)
        )
        return [(str(key), size) for key, size in found]


def _copies(server: KeyholeServer, query_id: str) -> list[Any]:
    """What there is of export copies: files (complete or partial) and blob rows."""
    files = [path.name for path in _stored_files(server, query_id) if "export" in path.name]
    return files + [row for row in _blob_rows(server, query_id) if "export" in row[0]]


# -- round trips --------------------------------------------------------------------------------


def test_postgresql_round_trip(http: httpx.Client, client: Polytomic, pg: str) -> None:
    _check_round_trip(http, _done(client, pg, POSTGRES_SQL), POSTGRES_TYPES, pages_at_least=3)


def test_mariadb_round_trip(http: httpx.Client, client: Polytomic, maria: str) -> None:
    _check_round_trip(http, _done(client, maria, MARIADB_SQL), MARIADB_TYPES)


def test_duckdb_round_trip(http: httpx.Client, client: Polytomic, duck_conn: str) -> None:
    _check_round_trip(http, _done(client, duck_conn, DUCKDB_SQL), DUCKDB_TYPES)


def test_sqlite_round_trip(http: httpx.Client, client: Polytomic, sqlite_conn: str) -> None:
    _check_round_trip(http, _done(client, sqlite_conn, SQLITE_SQL))


def test_an_empty_result_is_a_file_with_its_columns(http: httpx.Client, client: Polytomic, pg: str) -> None:
    query_id = _done(client, pg, "SELECT 1::int8 AS n, 'x'::text AS t WHERE false")
    assert _export(http, query_id, "csv").content == b"n,t\r\n"
    assert _export(http, query_id, "ndjson").content == b""
    table = pq.read_table(pa.BufferReader(_export(http, query_id, "parquet").content))
    assert table.num_rows == 0 and table.schema == pa.schema([("n", pa.int64()), ("t", pa.string())])
    stream = pyarrow.ipc.open_stream(_export(http, query_id, "arrow").content).read_all()
    assert stream.num_rows == 0 and stream.schema.names == ["n", "t"]


# -- who may export what ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def colleague(qserver: KeyholeServer, alice: Keys) -> dict[str, str]:
    other = qserver.bootstrap("query-org", "export-colleague@query.test")
    assert other.organization_id == alice.organization_id and other.user_id != alice.user_id
    return {"Authorization": f"Bearer {mint_key(qserver, alice.organization_id, other.user_id)}"}


def test_only_the_owner_exports(
    qserver: KeyholeServer,
    alice: Keys,
    http: httpx.Client,
    client: Polytomic,
    sqlite_conn: str,
    colleague: dict[str, str],
) -> None:
    query_id = _done(client, sqlite_conn, "SELECT name FROM items ORDER BY id")
    csv_file = "name\r\none\r\ntwo\r\ntrês\r\n".encode()
    assert _export(http, query_id, "csv").content == csv_file  # now stored: the copy is owner-only too
    assert _export(http, query_id, "csv").headers["content-length"] == str(len(csv_file))
    stranger = qserver.bootstrap("export-elsewhere", "mallory@export.test")
    for headers in (colleague, alice.basic, stranger.bearer):
        with httpx.Client(base_url=qserver.url, headers=headers) as other:
            for file_format in FORMATS:
                response = _export(other, query_id, file_format, Range="bytes=0-1")
                assert response.status_code == 404, response.text
                assert response.json() == {
                    "status": 404,
                    "message": "query not found",
                    "key": "query_not_found",
                    "metadata": {"id": query_id},
                }
    assert _copies(qserver, query_id) == ["export.csv", (f"queries/{query_id}/1/export.csv", len(csv_file))]
    missing = _export(http, "00000000-0000-0000-0000-000000000000", "csv")
    assert missing.status_code == 404 and missing.json()["key"] == "query_not_found"


def test_bad_formats_are_400_and_write_nothing(
    qserver: KeyholeServer, http: httpx.Client, client: Polytomic, sqlite_conn: str
) -> None:
    query_id = _done(client, sqlite_conn, "SELECT id FROM items ORDER BY id")
    before = (_stored_files(qserver, query_id), _blob_rows(qserver, query_id))
    url = f"/api/queries/{query_id}/export"
    for query in (
        "",
        "?format=",
        "?format=xml",
        "?format=CSV",
        "?format=" + "c" * 300,
        "?format=../x",
        "?format=csv%00",
        "?format=%01csv",
        "?format=csv&format=ndjson",
        "?format=arrows",
    ):
        response = http.get(url + query)
        assert response.status_code == 400, (query, response.text)
        body = response.json()
        assert body["key"] == "invalid_export_format" and body["metadata"]["field"] == "format"
        assert body["message"] == "format must be one of csv, ndjson, parquet, arrow"
    assert (_stored_files(qserver, query_id), _blob_rows(qserver, query_id)) == before
    # checked before the query is read: anyone's query, or none, answers the same 400
    assert http.get("/api/queries/not-a-query/export?format=xml").status_code == 400


def test_an_unfinished_or_failed_query_is_409(
    qserver: KeyholeServer, http: httpx.Client, client: Polytomic, pg: str
) -> None:
    running = client.query_runner.run_query(connection_id=pg, query="SELECT pg_sleep(30)").data.id
    deadline = time.monotonic() + 30
    while client.query_runner.get_query(id=running).data.status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    response = _export(http, running, "parquet")
    assert response.status_code == 409 and response.json()["key"] == "query_not_done"
    assert http.delete(f"/api/queries/{running}").json()["data"]["status"] == "failed"
    response = _export(http, running, "csv")
    assert response.status_code == 409 and "failed" in response.json()["message"]
    failed = run(client, pg, "SELECT * FROM no_such_table")
    assert _export(http, failed.data.id, "ndjson").status_code == 409


def test_an_expired_export_is_410_and_its_copy_is_purged(make_server: Callable[..., Any]) -> None:
    server = make_server(KEYHOLE_QUERY_RESULT_TTL_SECONDS="3", KEYHOLE_PURGE_INTERVAL_SECONDS="0.5")
    keys = server.bootstrap("ttl-export-org", "ttl@export.test")
    (server.home / "sql").mkdir(exist_ok=True)
    sqlite3.connect(server.home / "sql" / "ttl.sqlite").close()
    client = sdk(server, keys.user_api_key)
    connection_id = client.connections.create(
        name="mem", type="sqlite", configuration={"path": "ttl.sqlite"}
    ).data.id
    query_id = _done(client, connection_id, "SELECT 1 AS one")
    with httpx.Client(base_url=server.url, headers=keys.bearer) as http:
        assert _export(http, query_id, "parquet").status_code == 200
        assert [path.name for path in _stored_files(server, query_id) if path.is_file()] == [
            "000000.json",
            "export.parquet",
        ]
        time.sleep(3.2)
        for file_format in FORMATS:
            response = _export(http, query_id, file_format)
            assert response.status_code == 410, response.text
            assert response.json()["key"] == "query_expired"
    deadline = time.monotonic() + 10
    while [path for path in _stored_files(server, query_id) if path.is_file()]:
        assert time.monotonic() < deadline, "the purge never deleted the stored copy"
        time.sleep(0.2)


# -- the stored copy: length and ranges ---------------------------------------------------------


def test_the_stored_copy_has_a_length_and_answers_ranges(
    qserver: KeyholeServer, http: httpx.Client, client: Polytomic, pg: str
) -> None:
    query_id = _done(client, pg, "SELECT g, md5(g::text) AS h FROM generate_series(1, 3000) g")
    first = _export(http, query_id, "parquet")
    assert first.status_code == 200
    assert "content-length" not in first.headers and "accept-ranges" not in first.headers
    body = first.content
    [stored] = [path for path in _stored_files(qserver, query_id) if path.name.startswith("export")]
    assert stored.name == "export.parquet" and stored.read_bytes() == body

    whole = _export(http, query_id, "parquet")
    assert whole.content == body and whole.headers["content-length"] == str(len(body))
    assert whole.headers["accept-ranges"] == "bytes"
    size = len(body)
    for header, start, end in (
        ("bytes=0-99", 0, 100),
        ("bytes=100-", 100, size),
        ("bytes=-50", size - 50, size),
        (f"bytes={size - 10}-{size + 100}", size - 10, size),
        (f"bytes=-{size + 5}", 0, size),
        ("BYTES=7-7", 7, 8),
    ):
        part = _export(http, query_id, "parquet", Range=header)
        assert part.status_code == 206, (header, part.text)
        assert part.content == body[start:end], header
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert part.headers["content-length"] == str(end - start)
        assert part.headers["content-type"] == MEDIA_TYPES["parquet"]
    for header in (f"bytes={size}-", f"bytes={size + 1}-{size + 9}", "bytes=-0"):
        refused = _export(http, query_id, "parquet", Range=header)
        assert refused.status_code == 416, header
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert refused.json()["key"] == "range_not_satisfiable"
    for header in ("bytes=abc", "items=0-1", "bytes=5-1", "bytes=0-1,5-6", "bytes=", "bytes=1-2 3"):
        ignored = _export(http, query_id, "parquet", Range=header)
        assert ignored.status_code == 200 and ignored.content == body, header
    with_validator = _export(http, query_id, "parquet", Range="bytes=0-9", **{"If-Range": '"x"'})
    assert with_validator.status_code == 200 and with_validator.content == body


# -- big results: a download cut short, and flat memory -------------------------------------------

BIG_ROWS = 1_000_000
BIG_SQL = f"SELECT g AS id, md5(g::text) AS h, g * 0.5 AS x, now() AS t FROM generate_series(1, {BIG_ROWS}) g"
BOUND = 64 * MIB


def _drain(http: httpx.Client, query_id: str, file_format: str) -> int:
    """The length of a first download, which streams the file while it is stored."""
    with http.stream("GET", f"/api/queries/{query_id}/export", params={"format": file_format}) as response:
        assert response.status_code == 200 and "content-length" not in response.headers
        return sum(len(chunk) for chunk in response.iter_bytes())


def test_a_big_export_in_flat_memory_and_a_cut_download_stores_nothing(
    qserver: KeyholeServer, http: httpx.Client, client: Polytomic, make_connection: Callable[..., str]
) -> None:
    assert qserver.process is not None
    pid = qserver.process.pid
    connection_id = make_connection(
        "postgresql", {**POSTGRES, "query": {"max_rows": 2_000_000, "max_bytes": 4_294_967_296}}
    )
    warm = _done(client, connection_id, BIG_SQL.replace(str(BIG_ROWS), "200000"))
    for file_format in ("csv", "parquet"):
        _drain(http, warm, file_format)
    submitted = client.query_runner.run_query(connection_id=connection_id, query=BIG_SQL)
    big = wait(client, submitted.data.id, timeout=300)
    assert big.data.status == "done" and big.data.count == BIG_ROWS

    # a download cut short leaves no copy behind: the copy is written while the file streams,
    # and deleted when the client goes; another download meanwhile neither serves nor stores one
    url = f"/api/queries/{big.data.id}/export"
    with http.stream("GET", url, params={"format": "csv"}) as response:
        chunks = response.iter_bytes()  # held: dropping it closes the connection
        assert next(chunks).startswith(b"id,h,x,t\r\n")
        started = time.monotonic()
        copy = (f"queries/{big.data.id}/1/export.csv", None)  # a row whose write has not finished
        while copy not in _blob_rows(qserver, big.data.id):
            assert time.monotonic() < started + 5, "no copy is being written"
            time.sleep(0.02)
        with http.stream("GET", url, params={"format": "csv"}, headers={"Range": "bytes=-4"}) as other:
            assert other.status_code == 200 and "content-length" not in other.headers
    cut = time.monotonic()
    while _copies(qserver, big.data.id):
        # within the blob store's wait for an interrupted upload to abort (ABORT_WAIT_SECONDS)
        assert time.monotonic() < cut + 60, "the cut download's copy was left behind"
        time.sleep(0.05)

    before = status_kib(pid, "VmRSS")
    sizes = {}
    with Sampler(pid) as sampler:
        for file_format in ("csv", "parquet"):
            sizes[file_format] = _drain(http, big.data.id, file_format)
    grown = (sampler.peak - before) * 1024
    print(f"rss before {before} KiB, peak {sampler.peak} KiB, grown {grown // MIB} MiB, sizes {sizes}")
    assert grown < BOUND, f"RSS grew by {grown // MIB} MiB exporting {BIG_ROWS} rows"
    assert sizes["csv"] > BOUND, "the export is smaller than the bound: the test proves nothing"
    for file_format, size in sizes.items():
        stored = _export(http, big.data.id, file_format, Range="bytes=-4")
        assert stored.headers["content-range"] == f"bytes {size - 4}-{size - 1}/{size}"
    assert stored.content == b"PAR1"
