"""A finished query's whole result as one file, streamed page by page in constant memory.

Two halves, so that another format is only another writer: ``StoredResult`` reads the stored pages
one at a time whatever the format, and a writer turns each page into bytes as it arrives (the
first bytes, the header, go out before any page is read).

CSV (RFC 4180): a header row of the field names, one record per row, CRLF line ends, a field
quoted only when it holds a comma, a quote or a line break (quotes doubled). A value becomes a
cell as ``cell_text`` says. Two opt-ins, since both change the bytes: formula neutralisation (a
string cell or field name starting with ``= + - @``, tab or CR gets a leading ``'``, so that a
spreadsheet shows it instead of evaluating it) and a UTF-8 byte order mark (some spreadsheet
programs read UTF-8 only with one).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from keyhole.queries.service import QueryView

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BOM = "\ufeff".encode()


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A finished query and its stored pages, each decoded to its rows (field name → JSON value)
    when it is reached; the pages can be iterated once."""

    view: QueryView
    pages: AsyncIterator[list[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Export:
    """A result as a file: its name, its media type, and its bytes as they are produced."""

    filename: str
    media_type: str
    chunks: AsyncIterator[bytes]


def cell_text(value: Any) -> str | None:
    """A JSON value as the text of one cell: None for null, a string as it is, a number or a
    boolean as its JSON text (as the stored page wrote it), an object or an array as compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def neutralised(text: str) -> str:
    """``text`` as a spreadsheet shows it rather than evaluates it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_export(result: StoredResult, *, neutralise_formulas: bool = False, bom: bool = False) -> Export:
    return Export(
        filename=f"query-{result.view.id}.csv",
        media_type=CSV_MEDIA_TYPE,
        chunks=_csv_chunks(result, neutralise_formulas=neutralise_formulas, bom=bom),
    )


async def _csv_chunks(result: StoredResult, *, neutralise_formulas: bool, bom: bool) -> AsyncIterator[bytes]:
    fields = result.view.fields or []

    def cell(value: Any) -> str:
        text = cell_text(value)
        if text is None:
            return ""
        return neutralised(text) if neutralise_formulas and isinstance(value, str) else text

    header = [neutralised(name) if neutralise_formulas else name for name in fields]
    yield (_BOM if bom else b"") + _records([header])
    async for rows in result.pages:
        yield _records([cell(row.get(name)) for name in fields] for row in rows)


def _records(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, dialect="excel", lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()
