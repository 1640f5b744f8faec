"""Composio query-string parameters: comma-joined lists and paging by opaque cursor (booleans are
``keyhole.api.requests.query_flag``).

The cursor a page hands out (:func:`page`) is the one :func:`paging` reads back, so both live here."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import orjson
from starlette.requests import Request

from keyhole.errors import InvalidRequest


def csv(request: Request, name: str) -> list[str]:
    """A comma-joined list parameter (the clients join arrays with commas); repeats are merged."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def _query_error(name: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"query parameter {name} {message}",
        key="validation_error",
        metadata={"errors": [{"field": name, "message": message}]},
    )


def paging(request: Request, *, default_limit: int = 20, max_limit: int = 1000) -> tuple[int, int]:
    """``(offset, limit)`` from ``limit`` and the opaque ``cursor`` (base64 of the offset)."""
    raw_limit = request.query_params.get("limit")
    limit = default_limit
    if raw_limit:
        try:
            limit = int(float(raw_limit))  # the 1.x clients type it as a float
        except ValueError:
            raise _query_error("limit", f"must be an integer from 1 to {max_limit}") from None
        if not 1 <= limit <= max_limit:
            raise _query_error("limit", f"must be an integer from 1 to {max_limit}")
    cursor = request.query_params.get("cursor")
    offset = 0
    if cursor:
        try:
            decoded = orjson.loads(base64.urlsafe_b64decode(cursor.encode() + b"==="))
            offset = int(decoded["o"])
        except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
            raise _query_error("cursor", "is not a cursor this server issued") from None
        if offset < 0:
            raise _query_error("cursor", "is not a cursor this server issued")
    return offset, limit


def page(items: list[dict[str, Any]], total: int, offset: int, limit: int) -> dict[str, Any]:
    following = offset + len(items)
    cursor = (
        base64.urlsafe_b64encode(orjson.dumps({"o": following})).decode().rstrip("=")
        if following < total
        else None
    )
    return {
        "items": items,
        "next_cursor": cursor,
        "total_pages": math.ceil(total / limit) if total else 0,
        "current_page": offset // limit + 1,
        "total_items": total,
    }
