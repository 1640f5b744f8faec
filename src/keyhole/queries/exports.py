"""A finished query's whole result as one file, streamed page by page in constant memory.

Two halves, so that another format is only another writer: ``StoredResult`` reads the stored pages
one at a time whatever the format, and a writer turns each page into bytes as it arrives (the
first bytes, the header, go out before any page is read). The formats (``FORMATS``):

- CSV (RFC 4180): a header row of the field names, one record per row, CRLF line ends, a field
  quoted only when it holds a comma, a quote or a line break (quotes doubled). A value becomes a
  cell as ``cell_text`` says. Two opt-ins, since both change the bytes: formula neutralisation (a
  string cell or field name starting with ``= + - @``, tab or CR gets a leading ``'``, so that a
  spreadsheet shows it instead of evaluating it) and a UTF-8 byte order mark (some spreadsheet
  programs read UTF-8 only with one).
- NDJSON: each row object of the pages on a line of its own, as orjson writes it (``\\n`` ends).
- Parquet and Arrow (the IPC stream format): typed columns, one type per column kind
  (``export_schema``), each page converted to a record batch (``page_batch``) unless the run
  stored its columns already (``StoredResult.batches``).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from keyhole.errors import InvalidRequest
from keyhole.queries import kinds
from keyhole.queries.values import JSON_OPTIONS

if TYPE_CHECKING:
    from keyhole.queries.service import QueryView

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
FORMATS = ("csv", "ndjson", "parquet", "arrow")
MEDIA_TYPES = {
    "csv": CSV_MEDIA_TYPE,
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}
EXTENSIONS = {"csv": "csv", "ndjson": "ndjson", "parquet": "parquet", "arrow": "arrows"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BOM = "\ufeff".encode()

# A Parquet row group gathers pages up to this many rows or bytes of columns: readers skip and
# read a file by row group, and the footer holds statistics for each, so one small group per
# page (1,000 rows in some deployments) makes slow files with large footers. The group is
# encoded in memory, so the byte bound keeps wide rows from growing it.
ROW_GROUP_ROWS = 65_536
ROW_GROUP_BYTES = 16 * 1024 * 1024

_ARROW_TYPES = {
    kinds.INTEGER: pa.int64(),
    kinds.WIDE_INTEGER: pa.decimal128(20, 0),
    kinds.FLOAT: pa.float64(),
    kinds.BOOLEAN: pa.bool_(),
    kinds.DATE: pa.date32(),
    kinds.TIMESTAMP: pa.timestamp("us"),
    kinds.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    kinds.BINARY: pa.binary(),
    kinds.TEXT: pa.string(),
}
_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A finished query and its stored pages, each decoded to its rows (field name → JSON value)
    when it is reached; the pages can be iterated once."""

    view: QueryView
    pages: AsyncIterator[list[dict[str, Any]]]
    # The result's columns as stored by the run, already in ``export_schema`` form, when the run
    # stored them (the columnar path); the typed exports read them instead of converting pages.
    batches: Callable[[], AsyncIterator[pa.RecordBatch]] | None = None


@dataclass(frozen=True, slots=True)
class Export:
    """A result as a file: its name, its media type, and its bytes as they are produced. Once the
    file is stored (``queries/export_copies.py``), its ``size`` is known and ``read`` opens the
    bytes ``start`` to ``end`` (exclusive) of the stored file."""

    filename: str
    media_type: str
    chunks: AsyncIterator[bytes]
    size: int | None = None
    read: Callable[[int, int], Awaitable[AsyncIterator[bytes]]] | None = None


def export_format(value: str | None) -> str:
    """``value`` when it names a format; otherwise a 400 listing them (the value is not echoed:
    it is whatever the caller sent)."""
    if value is None or value not in FORMATS:
        raise InvalidRequest(
            f"format must be one of {', '.join(FORMATS)}",
            key="invalid_export_format",
            metadata={"field": "format", "formats": list(FORMATS)},
        )
    return value


def export(
    result: StoredResult, format: str, *, neutralise_formulas: bool = False, bom: bool = False
) -> Export:
    """The whole result as one file in ``format`` (the CSV options change nothing else)."""
    if export_format(format) == "csv":
        return csv_export(result, neutralise_formulas=neutralise_formulas, bom=bom)
    writers = {"ndjson": _ndjson_chunks, "parquet": _parquet_chunks, "arrow": _arrow_chunks}
    return Export(
        filename=f"query-{result.view.id}.{EXTENSIONS[format]}",
        media_type=MEDIA_TYPES[format],
        chunks=writers[format](result),
    )


# -- CSV ----------------------------------------------------------------------------------------


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


# -- NDJSON -------------------------------------------------------------------------------------


async def _ndjson_chunks(result: StoredResult) -> AsyncIterator[bytes]:
    option = JSON_OPTIONS | orjson.OPT_APPEND_NEWLINE
    async for rows in result.pages:
        if rows:
            yield b"".join([orjson.dumps(row, option=option) for row in rows])


# -- typed columns ------------------------------------------------------------------------------


def export_schema(fields: Sequence[str], field_kinds: Sequence[str]) -> pa.Schema:
    """The typed columns of a result: one per field, its type by the field's kind. A kind this
    version does not know (recorded by a newer one) is exported as text."""
    return pa.schema(
        [
            pa.field(name, _ARROW_TYPES.get(kind, pa.string()))
            for name, kind in zip(fields, field_kinds, strict=True)
        ]
    )


def page_batch(rows: Sequence[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """The rows of one decoded page as a record batch of ``schema`` (nulls stay nulls)."""
    columns = [_column([row.get(field.name) for row in rows], field.type) for field in schema]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _column(values: list[Any], type_: pa.DataType) -> pa.Array:
    """One column of page values (as ``queries/values.py`` wrote them) as ``type_``."""
    if pa.types.is_string(type_):
        return pa.array([cell_text(value) for value in values], type_)
    if pa.types.is_binary(type_):
        return pa.array([None if value is None else base64.b64decode(value) for value in values], type_)
    if pa.types.is_floating(type_):
        return pa.array([_NON_FINITE[value] if isinstance(value, str) else value for value in values], type_)
    if pa.types.is_date(type_) or pa.types.is_timestamp(type_):  # ISO 8601 text, parsed by Arrow
        return pa.array(values, pa.string()).cast(type_)
    return pa.array(values, type_)  # integers (wide ones too) and booleans, as JSON has them


def _batches(result: StoredResult, schema: pa.Schema) -> AsyncIterator[pa.RecordBatch]:
    if result.batches is not None:
        return result.batches()
    return _converted(result.pages, schema)


async def _converted(
    pages: AsyncIterator[list[dict[str, Any]]], schema: pa.Schema
) -> AsyncIterator[pa.RecordBatch]:
    async for rows in pages:
        if rows:
            yield page_batch(rows, schema)


def _schema(result: StoredResult) -> pa.Schema:
    return export_schema(result.view.fields or [], result.view.field_kinds or [])


class _Drain:
    """The file a writer writes into: what was written is taken out after each batch, so only
    the bytes of one batch are ever held."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data: bytes | pa.Buffer) -> int:
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        taken = b"".join(self._parts)
        self._parts.clear()
        return taken


async def _arrow_chunks(result: StoredResult) -> AsyncIterator[bytes]:
    schema = _schema(result)
    sink = _Drain()
    with pa.ipc.new_stream(sink, schema) as writer:
        yield sink.take()  # the schema, before any page is read
        async for batch in _batches(result, schema):
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()  # the end-of-stream marker


async def _parquet_chunks(result: StoredResult) -> AsyncIterator[bytes]:
    schema = _schema(result)
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema)
    group: list[pa.RecordBatch] = []
    rows = size = 0
    async for batch in _batches(result, schema):
        if batch.num_rows == 0:
            continue
        group.append(batch)
        rows += batch.num_rows
        size += batch.nbytes
        if rows >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
            await _write_row_group(writer, group, schema)
            group, rows, size = [], 0, 0
            yield sink.take()
    if group:
        await _write_row_group(writer, group, schema)
    writer.close()
    yield sink.take()


async def _write_row_group(writer: pq.ParquetWriter, group: list[pa.RecordBatch], schema: pa.Schema) -> None:
    """Encoding a row group takes a fifth of a second (measured, 64k rows of 9 columns): in a
    thread, so that the event loop goes on meanwhile. A download that stops meanwhile leaves the
    thread to finish and the writer to be closed when it is dropped."""
    table = pa.Table.from_batches(group, schema)
    await asyncio.to_thread(writer.write_table, table, row_group_size=table.num_rows)
