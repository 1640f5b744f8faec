"""The CSV writer behind the console's download, on pages of JSON values SQLite cannot produce
(booleans, objects, arrays, NaN as the runner writes it): each value's cell, the opt-ins, and
bytes that start before any page is read."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from keyhole.queries import QueryView, StoredResult
from keyhole.queries.exports import csv_export

FIELDS = ["=name", "n", "x", "flag", "doc", "list", "none", "text"]


def _view() -> QueryView:
    now = datetime.now(UTC)
    return QueryView(
        id="00000000-0000-4000-8000-000000000001",
        status="done",
        fields=FIELDS,
        field_kinds=["text"] * len(FIELDS),
        count=3,
        rows_so_far=3,
        bytes_so_far=0,
        expires_at=now,
        error=None,
        error_key=None,
        truncated=False,
        pages=2,
        connection_id="c",
        created_at=now,
        started_at=now,
        finished_at=now,
    )


def _stored(pages: list[list[dict[str, Any]]], read: list[int]) -> StoredResult:
    async def each_page() -> AsyncIterator[list[dict[str, Any]]]:
        for number, page in enumerate(pages):
            read.append(number)
            yield page

    return StoredResult(_view(), each_page())


PAGES: list[list[dict[str, Any]]] = [
    [
        {
            "=name": "=cmd",
            "n": -5,
            "x": 1e16,
            "flag": True,
            "doc": {"a": [1, "b"]},
            "list": [1, None],
            "none": None,
            "text": "-5",
        },
        {
            "=name": "+1",
            "n": 18446744073709551615,
            "x": 0.1,
            "flag": False,
            "doc": {},
            "list": [],
            "none": None,
            "text": "\tindented",
        },
    ],
    [{"=name": "@x", "n": 0, "x": "NaN", "flag": None, "doc": None, "list": None, "none": None, "text": ""}],
]


async def _bytes(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_each_json_value_becomes_one_cell() -> None:
    export = csv_export(_stored(PAGES, []))
    assert (export.filename, export.media_type) == (
        "query-00000000-0000-4000-8000-000000000001.csv",
        "text/csv; charset=utf-8",
    )
    body = await _bytes(export.chunks)
    assert body.split(b"\r\n")[0] == b"=name,n,x,flag,doc,list,none,text"
    records = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert records[1:] == [
        ["=cmd", "-5", "1e+16", "true", '{"a":[1,"b"]}', "[1,null]", "", "-5"],
        ["+1", "18446744073709551615", "0.1", "false", "{}", "[]", "", "\tindented"],
        ["@x", "0", "NaN", "", "", "", "", ""],
    ]


async def test_neutralising_prefixes_text_only_and_a_bom_is_opt_in() -> None:
    body = await _bytes(csv_export(_stored(PAGES, []), neutralise_formulas=True, bom=True).chunks)
    assert body.startswith(b"\xef\xbb\xbf'=name,")
    records = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert [record[0] for record in records[1:]] == ["'=cmd", "'+1", "'@x"]
    assert [record[1] for record in records[1:]] == ["-5", "18446744073709551615", "0"]  # numbers stay
    assert [record[7] for record in records[1:]] == ["'-5", "'\tindented", ""]


async def test_the_header_goes_out_before_any_page_is_read() -> None:
    read: list[int] = []
    chunks = csv_export(_stored(PAGES, read)).chunks
    header = await anext(chunks)
    assert header == b"=name,n,x,flag,doc,list,none,text\r\n" and read == []
    await anext(chunks)
    assert read == [0]  # one page at a time
    rest = await _bytes(chunks)
    assert read == [0, 1] and rest.count(b"\r\n") == 1
