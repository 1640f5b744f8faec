"""How database values become JSON (the table is in docs/decisions.md, "Query values").

The rule of thumb: what JSON can say exactly, it says natively (integers, booleans, strings,
JSON documents, arrays); what it cannot say exactly becomes a string in a standard notation
(decimals, dates and times in ISO 8601, intervals as ISO 8601 durations, bytes as base64).

Speed matters here (every value of every row passes through), so the work is pushed down:
PostgreSQL values arrive already shaped through asyncpg codecs (``postgresql_codecs``),
MySQL values through PyMySQL converters (``mysql_converters``), and orjson serializes the
rest natively, calling ``json_default`` only for the few types it does not know.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import gc
import ipaddress
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

import orjson

# Naive timestamps stay naive (a wall-clock time without a zone); aware ones are UTC with "Z".
JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS

Converter = Callable[[Any], Any]


def unique_names(names: Iterable[str]) -> list[str]:
    """Column names made unique in order: a repeated ``id`` becomes ``id_2``, ``id_3``…

    A suffix that would collide with a real column name is skipped (``id``, ``id_2``, ``id``
    gives ``id``, ``id_2``, ``id_3``). An empty name becomes ``column_<position>``.
    """
    raw = [name or f"column_{position}" for position, name in enumerate(names, start=1)]
    taken = set(raw)
    seen: set[str] = set()
    unique: list[str] = []
    for name in raw:
        if name not in seen:
            seen.add(name)
            unique.append(name)
            continue
        suffix = 2
        while f"{name}_{suffix}" in taken or f"{name}_{suffix}" in seen:
            suffix += 1
        candidate = f"{name}_{suffix}"
        seen.add(candidate)
        taken.add(candidate)
        unique.append(candidate)
    return unique


def b64(value: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(value).decode("ascii")


def iso_duration(value: dt.timedelta) -> str:
    """``timedelta`` as an ISO 8601 duration: ``P3DT4H5M6.5S``, ``-PT1H``, ``PT0S``."""
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    days = value.days
    seconds = value.seconds
    micros = value.microseconds
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = "P"
    if days:
        text += f"{days}D"
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if seconds or micros:
        clock += f"{seconds}.{micros:06d}".rstrip("0").rstrip(".") + "S" if micros else f"{seconds}S"
    if clock:
        text += "T" + clock
    if text == "P":
        text = "PT0S"
    return sign + text


def decimal_text(value: decimal.Decimal) -> str:
    """Exact decimal text without exponent (``1E+3`` → ``1000``); ``NaN``/``Infinity`` kept."""
    if not value.is_finite():
        return "NaN" if value.is_nan() else ("-Infinity" if value.is_signed() else "Infinity")
    text = str(value)
    return format(value, "f") if "E" in text or "e" in text else text


def _range_text(value: Any) -> str:
    """asyncpg ``Range`` in PostgreSQL's own notation: ``[1,5)``, ``(,3]``, ``empty``."""
    if value.isempty:
        return "empty"
    lower = "" if value.lower is None else _scalar_text(value.lower)
    upper = "" if value.upper is None else _scalar_text(value.upper)
    return f"{'[' if value.lower_inc else '('}{lower},{upper}{']' if value.upper_inc else ')'}"


def _scalar_text(value: Any) -> str:
    converted = json_default(value) if not isinstance(value, str | int | float) else value
    if isinstance(converted, dt.datetime | dt.date | dt.time):
        return converted.isoformat()
    return str(converted)


def json_default(value: Any) -> Any:
    """orjson's fallback for the types it does not serialize itself."""
    if isinstance(value, decimal.Decimal):
        return decimal_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return b64(value)
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, dt.time):  # only a time with a zone gets here
        return value.isoformat()
    if isinstance(value, uuid.UUID):  # subclasses, e.g. asyncpg's own UUID
        return str(value)
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return str(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, enum.Enum):
        return value.value
    if type(value).__name__ == "Range" and hasattr(value, "isempty"):
        return _range_text(value)
    if type(value).__name__ == "Record" and hasattr(value, "items"):  # a composite value
        return dict(value.items())
    if isinstance(value, tuple):
        return list(value)
    if type(value).__name__ == "BitString" and hasattr(value, "as_string"):
        return value.as_string()
    return str(value)


def sanitize(value: Any) -> Any:
    """The slow, thorough path for a batch orjson refused: integers beyond 64 bits, times with a
    zone inside arrays… Each value is walked and made serializable."""
    if value is None or isinstance(value, bool | str | float | dt.datetime | dt.date):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, orjson.Fragment):
        return value
    if isinstance(value, dt.time):
        return value.isoformat() if value.tzinfo is not None else value
    if isinstance(value, Mapping):
        return {str(key) if not isinstance(key, str) else key: sanitize(item) for key, item in value.items()}
    if isinstance(value, list | tuple) and type(value).__name__ != "Record":
        return [sanitize(item) for item in value]
    converted = json_default(value)
    return converted if isinstance(converted, str) else sanitize(converted)


def encode_rows(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """A JSON array of row objects. Falls back to ``sanitize`` when orjson refuses a value.

    The cyclic garbage collector is paused while the batch's dicts exist: they hold no cycles
    and die by reference counting, but thousands of live containers would otherwise trigger
    full collections that walk the whole heap of the server (measured: a third of the time).
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        objects = list(map(dict, map(zip, repeat(names), rows)))  # [dict(zip(names, row)) …], faster
        try:
            return orjson.dumps(objects, default=json_default, option=JSON_OPTIONS)
        except orjson.JSONEncodeError:
            return orjson.dumps(sanitize(objects), default=json_default, option=JSON_OPTIONS)
    finally:
        if paused:
            gc.enable()


def float_or_text(value: float) -> float | str:
    """Non-finite floats have no JSON form; they are written as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


# -- PostgreSQL (asyncpg) ---------------------------------------------------------------------

# Types whose text form is already the documented JSON string, decoded with ``str`` (no Python
# parsing): exact decimals, ISO 8601 intervals (with ``IntervalStyle = iso_8601``), times with a
# zone, bit strings, geometry, network addresses, money and UUIDs.
POSTGRES_TEXT_TYPES = (
    "numeric",
    "interval",
    "timetz",
    "bit",
    "varbit",
    "point",
    "line",
    "lseg",
    "box",
    "path",
    "polygon",
    "circle",
    "inet",
    "cidr",
    "money",
    "uuid",
)
POSTGRES_JSON_TYPES = ("json", "jsonb")


async def postgresql_codecs(connection: Any) -> None:
    """Install the codecs on an asyncpg connection (arrays of these types follow their element)."""
    for type_name in POSTGRES_TEXT_TYPES:
        await connection.set_type_codec(
            type_name, schema="pg_catalog", encoder=str, decoder=str, format="text"
        )
    for type_name in POSTGRES_JSON_TYPES:
        # The server's own JSON text is spliced into the page as it is: no parse, no re-encode.
        await connection.set_type_codec(
            type_name, schema="pg_catalog", encoder=str, decoder=orjson.Fragment, format="text"
        )
    await connection.set_type_codec("bytea", schema="pg_catalog", encoder=bytes, decoder=b64, format="binary")
    for type_name in ("float4", "float8"):
        await connection.set_type_codec(
            type_name, schema="pg_catalog", encoder=str, decoder=_pg_float, format="text"
        )


def _pg_float(text: str) -> float | str:
    # PostgreSQL prints floats with full precision (extra_float_digits defaults to 1 since v12).
    if text in _PG_NON_FINITE:
        return _PG_NON_FINITE[text]
    return float(text)


_PG_NON_FINITE = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}


# -- MySQL / MariaDB (PyMySQL converters) ------------------------------------------------------


def _mysql_datetime(text: str) -> str | None:
    if text.startswith("0000-00-00"):
        return None  # MySQL's "zero date" is not a date
    return text.replace(" ", "T", 1)


def _mysql_date(text: str) -> str | None:
    return None if text.startswith("0000-00-00") else text


def _mysql_time(text: str) -> str:
    return text


def _mysql_bit(raw: bytes | str) -> int:
    data = raw.encode("latin-1") if isinstance(raw, str) else raw
    return int.from_bytes(data, "big")


def mysql_converters() -> dict[int, Converter]:
    """PyMySQL's conversion table with the text kept where it already is the JSON form."""
    from pymysql.constants import FIELD_TYPE
    from pymysql.converters import conversions

    table: dict[Any, Any] = dict(conversions)
    table.update(
        {
            FIELD_TYPE.DECIMAL: str,
            FIELD_TYPE.NEWDECIMAL: str,
            FIELD_TYPE.DATETIME: _mysql_datetime,
            FIELD_TYPE.TIMESTAMP: _mysql_datetime,  # in the session's time zone, as MySQL shows it
            FIELD_TYPE.DATE: _mysql_date,
            FIELD_TYPE.NEWDATE: _mysql_date,
            FIELD_TYPE.TIME: _mysql_time,
            FIELD_TYPE.JSON: orjson.Fragment,
            FIELD_TYPE.BIT: _mysql_bit,
        }
    )
    return table


# -- DuckDB -----------------------------------------------------------------------------------


def duckdb_converter(type_name: str) -> Converter | None:
    """A per-column converter for the DuckDB types orjson cannot take as Python gives them."""
    upper = type_name.upper()
    if upper == "JSON":
        return _fragment_or_none
    if upper in {"HUGEINT", "UHUGEINT", "VARINT", "BIGNUM"}:
        return _int_text
    if upper in {"TIME WITH TIME ZONE", "TIMETZ"}:
        return _time_text
    if upper in {"FLOAT", "DOUBLE", "REAL"}:
        return _float_or_none
    return None


def _fragment_or_none(value: Any) -> Any:
    return None if value is None else orjson.Fragment(value)


def _int_text(value: Any) -> Any:
    return None if value is None else str(value)


def _time_text(value: Any) -> Any:
    return None if value is None else value.isoformat()


def _float_or_none(value: Any) -> Any:
    return None if value is None else float_or_text(value)


def sqlite_row(row: Sequence[Any]) -> Sequence[Any]:
    """SQLite floats may be non-finite; everything else orjson (or ``json_default``) handles."""
    for value in row:
        if isinstance(value, float) and not math.isfinite(value):
            return tuple(float_or_text(item) if isinstance(item, float) else item for item in row)
    return row
