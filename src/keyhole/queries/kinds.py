"""The kind of a result column: what its values are, whatever the database called the type.

The pages say every value in JSON (``queries/values.py``); a kind says which typed column the same
values become in a typed export (Parquet, Arrow): see ``queries/exports.py``. A column whose values
can be anything JSON holds (SQLite's dynamic types, arrays, composites) is ``text``: each value
as the text of one cell.
"""

from __future__ import annotations

INTEGER = "integer"  # within 64 signed bits
WIDE_INTEGER = "wide_integer"  # within 64 unsigned or signed bits (MySQL BIGINT, DuckDB UBIGINT)
FLOAT = "float"  # numbers, and "NaN" / "Infinity" / "-Infinity"
BOOLEAN = "boolean"
DATE = "date"  # "YYYY-MM-DD"
TIMESTAMP = "timestamp"  # ISO 8601 without a zone: a wall-clock time
TIMESTAMPTZ = "timestamptz"  # ISO 8601 in UTC, "…Z"
BINARY = "binary"  # base64
TEXT = "text"

_POSTGRESQL = {
    "int2": INTEGER,
    "int4": INTEGER,
    "int8": INTEGER,
    "oid": INTEGER,
    "float4": FLOAT,
    "float8": FLOAT,
    "bool": BOOLEAN,
    "date": DATE,
    "timestamp": TIMESTAMP,
    "timestamptz": TIMESTAMPTZ,
    "bytea": BINARY,
}

_MYSQL = {
    "TINY": INTEGER,
    "SHORT": INTEGER,
    "INT24": INTEGER,
    "LONG": INTEGER,
    "YEAR": INTEGER,
    "LONGLONG": WIDE_INTEGER,
    "FLOAT": FLOAT,
    "DOUBLE": FLOAT,
    "DATE": DATE,
    "NEWDATE": DATE,
    "DATETIME": TIMESTAMP,
    "TIMESTAMP": TIMESTAMP,  # shown in the session's time zone, as MySQL shows it
}

_DUCKDB = {
    "TINYINT": INTEGER,
    "SMALLINT": INTEGER,
    "INTEGER": INTEGER,
    "BIGINT": INTEGER,
    "UTINYINT": INTEGER,
    "USMALLINT": INTEGER,
    "UINTEGER": INTEGER,
    "UBIGINT": WIDE_INTEGER,
    "FLOAT": FLOAT,
    "DOUBLE": FLOAT,
    "BOOLEAN": BOOLEAN,
    "DATE": DATE,
    "TIMESTAMP": TIMESTAMP,
    "TIMESTAMP_S": TIMESTAMP,
    "TIMESTAMP_MS": TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": TIMESTAMPTZ,
    "BLOB": BINARY,
}


def kind_of(dialect: str, type_name: str) -> str:
    """The kind of a column of ``dialect`` whose type the driver names ``type_name``."""
    if dialect == "postgresql":
        return _POSTGRESQL.get(type_name, TEXT)
    if dialect == "mysql":
        return _MYSQL.get(type_name, TEXT)
    if dialect == "duckdb":
        return _DUCKDB.get(type_name.upper(), TEXT)
    return TEXT  # SQLite: a column's values need not have its declared type
