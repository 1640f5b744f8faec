"""Pages from columns: a result that arrives as Arrow record batches becomes row JSON column by
column, with no Python object per value.

Each column is turned into an array of JSON value texts by vectorised kernels (Arrow compute,
numpy, one ``orjson.dumps`` of a whole float column); one element-wise join then writes every row
object with a trailing comma, so that the page builder cuts pages out of one buffer. The bytes
are exactly those of the row path (``queries/values.py``): a value this module cannot write
exactly so (a date past year 9999, which the row path's driver refuses) raises ``ColumnarUnavailable``
and the run goes back to the row path.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from keyhole.queries.exports import cell_text

Encoder = Callable[[pa.Array], pa.Array]

_NULL = pa.scalar("null")
_QUOTE = pa.scalar('"')
_ESCAPED = r'[\x00-\x1f"\\]'  # what a JSON string must escape (orjson escapes exactly these)
_HEX = "0123456789abcdef"
# 1 January of year 1 and of year 10000, in days since the Unix epoch: the dates Python can hold.
_FIRST_DAY = -719_162
_PAST_LAST_DAY = 2_932_897
_MICROS_PER_DAY = 86_400_000_000
PLAIN_DECIMAL_SCALE = 6  # beyond it, Arrow's decimal text turns to exponents (1E-7)
_NON_FINITE_NUMERIC = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


class ColumnarUnavailable(Exception):
    """This result cannot take the columnar path (a value it cannot write exactly as the row path
    does, a statement the columnar driver cannot run): the run takes the row path instead."""


@dataclass(frozen=True, slots=True)
class EncodedRows:
    """Row objects back to back, each followed by a comma: row ``i`` is
    ``data[ends[i-1]:ends[i] - 1]`` (``ends[-1]`` taken as 0)."""

    data: memoryview
    ends: np.ndarray


def _storage(column: pa.Array) -> pa.Array:
    return column.storage if isinstance(column, pa.ExtensionArray) else column


def _texts(values: pa.Array, nulls: pa.Array | None = None) -> pa.Array:
    """``values`` (strings) with ``null`` where the column is null."""
    if nulls is None:
        return pc.fill_null(values, _NULL)
    return pc.if_else(nulls, _NULL, values)


def _quoted(values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(_QUOTE, values, _QUOTE, "")


def _as_text(column: pa.Array) -> pa.Array:
    return _texts(pc.cast(column, pa.string()))


def _string(column: pa.Array) -> pa.Array:
    if column.type != pa.string():
        column = pc.cast(column, pa.string())
    quoted = _quoted(column)
    needs_escape = pc.fill_null(pc.match_substring_regex(column, _ESCAPED), False)
    if pc.any(needs_escape).as_py():
        # Rare: escaped one by one with orjson itself, so that the bytes are its bytes.
        escaped = [orjson.dumps(value).decode() for value in pc.filter(column, needs_escape).to_pylist()]
        quoted = pc.replace_with_mask(quoted, needs_escape, pa.array(escaped, pa.string()))
    return _texts(quoted)


def _split_texts(text: bytes, count: int) -> pa.Array:
    """A string array from ``count`` comma-separated texts that hold no comma themselves."""
    body = np.frombuffer(text, dtype=np.uint8)
    commas = np.flatnonzero(body == ord(","))
    lengths = np.append(commas, len(body)) - np.concatenate(([0], commas + 1))
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(np.delete(body, commas)))


def _float(column: pa.Array) -> pa.Array:
    values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    # orjson writes a numpy float exactly as it writes a Python float (a non-finite one as null).
    texts = _split_texts(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1], len(values))
    finite = np.isfinite(values)
    if not finite.all():
        special = np.where(np.isnan(values), '"NaN"', np.where(values > 0, '"Infinity"', '"-Infinity"'))
        texts = pc.if_else(pa.array(finite), texts, pa.array(special.astype(object), pa.string()))
    return _texts(texts, column.is_null())


def _civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day of days since 1970-01-01 (proleptic Gregorian), vectorised."""
    shifted = days.astype(np.int64) + 719_468
    era = np.floor_divide(shifted, 146_097)
    day_of_era = shifted - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = np.where(month_index < 10, month_index + 3, month_index - 9)
    year = year_of_era + era * 400 + (month <= 2)
    return year, month, day


def _put(out: np.ndarray, at: int, width: int, value: np.ndarray) -> None:
    """Write ``value`` as ``width`` (even) zero-padded decimal digits at column ``at`` of every row,
    two digits per step."""
    for position in range(at + width - 2, at - 2, -2):
        value, pair = np.divmod(value, 100)
        out[:, position : position + 2] = _DIGIT_PAIRS[pair].view(np.uint8).reshape(-1, 2)


def _fixed_texts(rows: np.ndarray, widths: np.ndarray | None = None) -> pa.Array:
    """A string array of the rows of a 2-D byte array (each cut to its width, when given)."""
    count, width = rows.shape
    if widths is None:
        rows = np.ascontiguousarray(rows)
        offsets = np.arange(0, width * (count + 1), width, dtype=np.int32)
        return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(rows))
    keep = np.arange(width) < widths[:, None]
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(widths, out=offsets[1:])
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(rows[keep]))


def _check_days(days: np.ndarray) -> None:
    if len(days) and (days.min() < _FIRST_DAY or days.max() >= _PAST_LAST_DAY):
        raise ColumnarUnavailable("a date outside years 1 to 9999")


def _iso(days: np.ndarray, micros_of_day: np.ndarray | None, suffix: bytes) -> pa.Array:
    """``"YYYY-MM-DD"`` or ``"YYYY-MM-DDTHH:MM:SS[.ffffff]<suffix>`` as orjson writes a date or a
    datetime: the fraction only where it is not zero."""
    _check_days(days)
    year, month, day = _civil(days)
    width = 12 if micros_of_day is None else 27 + len(suffix)
    out = np.empty((len(days), width), dtype=np.uint8)
    out[:, 0] = ord('"')
    _put(out, 1, 4, year)
    out[:, 5] = out[:, 8] = ord("-")
    _put(out, 6, 2, month)
    _put(out, 9, 2, day)
    if micros_of_day is None:
        out[:, 11] = ord('"')
        return _fixed_texts(out)
    seconds, fraction = np.divmod(micros_of_day, 1_000_000)
    out[:, 11] = ord("T")
    _put(out, 12, 2, seconds // 3600)
    out[:, 14] = out[:, 17] = ord(":")
    _put(out, 15, 2, seconds // 60 % 60)
    _put(out, 18, 2, seconds % 60)
    fractional = fraction != 0
    out[:, 20] = ord(".")
    _put(out, 21, 6, fraction)
    tail = np.frombuffer(suffix, dtype=np.uint8)
    if fractional.all():
        out[:, 27:] = tail
        return _fixed_texts(out)
    if not fractional.any():
        out[:, 20 : 20 + len(tail)] = tail
        return _fixed_texts(out[:, : 20 + len(tail)])
    # Mixed: write the suffix after the fraction, then drop the fraction where it is zero.
    out[:, 27:] = tail
    out[~fractional, 20 : 20 + len(tail)] = tail
    widths = np.where(fractional, width, 20 + len(tail)).astype(np.int32)
    return _fixed_texts(out, widths)


def _date(column: pa.Array) -> pa.Array:
    days = pc.fill_null(column.cast(pa.int32()), 0).to_numpy()
    return _texts(_iso(days, None, b""), column.is_null())


def _timestamp(column: pa.Array) -> pa.Array:
    zone = column.type.tz
    micros = pc.fill_null(column.cast(pa.timestamp("us", tz=zone)).cast(pa.int64()), 0).to_numpy()
    days, micros_of_day = np.divmod(micros, _MICROS_PER_DAY)
    return _texts(_iso(days, micros_of_day, b'Z"' if zone else b'"'), column.is_null())


_DIGIT_PAIRS = np.array([48 + n // 10 | (48 + n % 10) << 8 for n in range(100)], dtype="<u2")
_HEX_PAIRS = np.array([ord(_HEX[b >> 4]) | ord(_HEX[b & 15]) << 8 for b in range(256)], dtype="<u2")


def _uuid_text(column: pa.Array, quote: bool) -> pa.Array:
    """Canonical UUID text (``xxxxxxxx-xxxx-…``) of 16-byte values; nulls stay nulls."""
    storage = _storage(column)
    count = len(storage)
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8)[
        storage.offset * 16 : (storage.offset + count) * 16
    ]
    hex_digits = _HEX_PAIRS[raw].view(np.uint8).reshape(count, 32)
    first = 1 if quote else 0
    out = np.empty((count, 36 + 2 * first), dtype=np.uint8)
    if quote:
        out[:, 0] = out[:, -1] = ord('"')
    for start, end, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        out[:, first + at : first + at + end - start] = hex_digits[:, start:end]
        if at:
            out[:, first + at - 1] = ord("-")
    texts = _fixed_texts(out)
    return pc.if_else(column.is_null(), pa.scalar(None, pa.string()), texts)


def _uuid(column: pa.Array) -> pa.Array:
    return _texts(_uuid_text(column, quote=True))


def _numeric_text(column: pa.Array) -> pa.Array:
    """PostgreSQL ``numeric`` as the ADBC driver writes it, with PostgreSQL's own spelling of the
    non-finite values (the row path reads the server's text)."""
    text = _storage(column)
    for driver, server in _NON_FINITE_NUMERIC.items():
        text = pc.if_else(pc.equal(text, driver), pa.scalar(server), text)
    return text


def _numeric(column: pa.Array) -> pa.Array:
    return _texts(_quoted(_numeric_text(column)))


def _decimal(column: pa.Array) -> pa.Array:
    """Arrow writes a decimal of scale up to 6 in plain notation, as ``values.decimal_text`` does."""
    return _texts(_quoted(pc.cast(column, pa.string())))


def _json(column: pa.Array) -> pa.Array:
    """The server's JSON text, spliced in as it is (as the row path does)."""
    text = _storage(column)
    return _texts(text)


def _binary(column: pa.Array) -> pa.Array:
    texts = [
        None if value is None else f'"{base64.b64encode(value).decode()}"' for value in column.to_pylist()
    ]
    return _texts(pa.array(texts, pa.string()))


def encoder_for(field: pa.Field) -> Encoder | None:
    """How a column of this Arrow type becomes JSON texts, or None when this path cannot say."""
    kind = field.type
    if isinstance(kind, pa.BaseExtensionType):
        name = kind.extension_name
        if name == "arrow.uuid":
            return _uuid
        if name == "arrow.json":
            return _json
        if name == "arrow.opaque" and getattr(kind, "type_name", None) == "numeric":
            return _numeric
        return None
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return _as_text
    if pa.types.is_float64(kind):
        return _float
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _string
    if pa.types.is_decimal(kind) and kind.scale <= PLAIN_DECIMAL_SCALE:
        return _decimal
    if pa.types.is_date32(kind):
        return _date
    if pa.types.is_timestamp(kind) and kind.unit in ("s", "ms", "us"):
        return _timestamp
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return _binary
    return None


def _json_cells(column: pa.Array) -> pa.Array:
    return pa.array(
        [None if text is None else cell_text(orjson.loads(text)) for text in _storage(column).to_pylist()],
        pa.string(),
    )


def export_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A batch as the driver gave it, in the typed export schema: the same values
    ``exports.page_batch`` makes of the same rows read back from the pages."""
    columns = []
    for column, target in zip(batch.columns, schema, strict=True):
        kind = column.type
        extension = kind.extension_name if isinstance(kind, pa.BaseExtensionType) else None
        if pa.types.is_string(target.type) and extension is not None:
            if extension == "arrow.uuid":
                column = _uuid_text(column, quote=False)
            elif extension == "arrow.json":
                column = _json_cells(column)
            else:  # PostgreSQL numeric
                column = _numeric_text(column)
        elif extension is not None:
            column = _storage(column)
        columns.append(column.cast(target.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


class BatchEncoder:
    """Encodes the batches of one result (whose schema it was built from) into row JSON."""

    def __init__(self, names: Sequence[str], schema: pa.Schema) -> None:
        encoders = [encoder_for(field) for field in schema]
        if len(names) != len(schema) or any(encoder is None for encoder in encoders):
            raise ColumnarUnavailable("a column type the columnar path does not write")
        self._encoders: list[Encoder] = [encoder for encoder in encoders if encoder is not None]
        keys = [orjson.dumps(name).decode() + ":" for name in names]
        # '{"a":' v1 ',"b":' v2 … '},'
        self._pieces = ["{" + keys[0], *("," + key for key in keys[1:]), "},"]

    def encode(self, batch: pa.RecordBatch) -> EncodedRows:
        arrays: list[pa.Array | pa.Scalar] = [pa.scalar(self._pieces[0])]
        for index, encoder in enumerate(self._encoders):
            arrays.append(encoder(batch.column(index)))
            arrays.append(pa.scalar(self._pieces[index + 1]))
        rows = pc.binary_join_element_wise(*arrays, "")
        if isinstance(rows, pa.ChunkedArray):
            rows = rows.combine_chunks()
        offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset : rows.offset + len(rows) + 1]
        data = memoryview(rows.buffers()[2]).cast("B")[offsets[0] : offsets[-1]]
        return EncodedRows(data, (offsets[1:] - offsets[0]).astype(np.int64))
