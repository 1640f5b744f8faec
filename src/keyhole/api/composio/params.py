"""Composio query-string parameters: comma-joined lists and paging by opaque cursor (booleans are
``keyhole.api.requests.query_flag``), and the models that describe each route's query string.

The cursor a page hands out (:func:`page`) is the one :func:`paging` reads back, so both live here.
The handlers parse by hand (lists may be comma-joined or repeated, ``limit`` may be fractional, an
empty value is an absent one); the models mirror that parsing for the OpenAPI documents."""

from __future__ import annotations

import base64
import binascii
import math
from typing import Literal, TypeVar

import orjson
from pydantic import BaseModel, Field
from starlette.requests import Request

from keyhole.accounts.service import STATUSES
from keyhole.api.composio.renderers import Page
from keyhole.errors import InvalidRequest

Item = TypeVar("Item")
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
# Past any offset a real page reaches, and within the store's 64-bit integers.
_MAX_OFFSET = 2**53
# Described as one text value: a value is a list of one, and the server reads every repetition too.
_LIST = "Comma-joined values; the parameter may also be repeated."


class PageQuery(BaseModel):
    cursor: str | None = Field(default=None, description="The next_cursor of the previous page.")
    limit: float = Field(
        default=DEFAULT_LIMIT,
        ge=1,
        lt=MAX_LIMIT + 1,
        description=f"Items per page, 1 to {MAX_LIMIT}; a fraction is dropped.",
    )


class AccountListQuery(PageQuery):
    toolkit_slugs: str | None = Field(default=None, description=_LIST)
    statuses: str | None = Field(default=None, description=f"{_LIST} Among {', '.join(STATUSES)}.")
    user_ids: str | None = Field(default=None, description=_LIST)
    auth_config_ids: str | None = Field(default=None, description=_LIST)
    connected_account_ids: str | None = Field(default=None, description=_LIST)
    order_by: Literal["created_at", "updated_at"] = "created_at"
    order_direction: Literal["asc", "desc"] = "desc"
    account_type: str | None = Field(
        default=None, description="SHARED lists nothing: every Keyhole account is private."
    )


class AuthConfigListQuery(PageQuery):
    toolkit_slug: str | None = Field(default=None, description=_LIST)
    show_disabled: bool = True
    search: str | None = Field(default=None, description="A part of the name, in any case.")
    is_composio_managed: bool = Field(
        default=False, description="true lists nothing: Keyhole has no Composio-managed auth."
    )


class ToolkitListQuery(PageQuery):
    search: str | None = Field(default=None, description="A part of the slug or name, in any case.")
    type: str | None = Field(
        default=None, description="custom lists nothing: every toolkit is the catalog's."
    )
    managed_by: str | None = Field(default=None, description="project lists nothing, as type=custom.")
    sort_by: str | None = Field(
        default=None, description="alphabetically sorts by slug; otherwise the generic toolkit comes first."
    )


class DeleteQuery(BaseModel):
    revoke_on_delete: bool = Field(default=False, description="Accepted; nothing is revoked upstream.")


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


def paging(request: Request) -> tuple[int, int]:
    """``(offset, limit)`` from ``limit`` and the opaque ``cursor`` (base64 of the offset)."""
    raw_limit = request.query_params.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit:
        try:
            limit = int(float(raw_limit))  # the 1.x clients type it as a float
        except (ValueError, OverflowError):
            raise _query_error("limit", f"must be an integer from 1 to {MAX_LIMIT}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise _query_error("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    cursor = request.query_params.get("cursor")
    offset = 0
    if cursor:
        try:
            decoded = orjson.loads(base64.urlsafe_b64decode(cursor.encode() + b"==="))
            offset = int(decoded["o"])
        except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
            raise _query_error("cursor", "is not a cursor this server issued") from None
        if not 0 <= offset < _MAX_OFFSET:
            raise _query_error("cursor", "is not a cursor this server issued")
    return offset, limit


def page(items: list[Item], total: int, offset: int, limit: int) -> Page[Item]:
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
