"""Polytomic listings of audited calls: the record and page shapes both listings share (one
connection's, under ``/api/connections/{id}/proxy/calls``), and the organization-wide log, a
Keyhole extension (``GET /api/proxy/calls``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from keyhole.api.openapi import Answer, describe
from keyhole.api.polytomic.endpoint import endpoint_for
from keyhole.api.requests import query_flag
from keyhole.api.responses import JSONResponse
from keyhole.audit.cursor import MAX_CURSOR_LENGTH
from keyhole.audit.query import OUTCOME_PATTERN, CallFilter, StatusClass, invalid_parameter
from keyhole.audit.records import CallRecord
from keyhole.audit.service import CallPage
from keyhole.services import Services
from keyhole.tenancy.access import Access
from keyhole.tenancy.principal import Principal
from keyhole.timestamps import timestamp

ORGANIZATION_PAGE_DEFAULT = 100
ORGANIZATION_PAGE_MAX = 1000
_FILTERS = ("connection_id", "outcome", "ok", "status_class", "since", "until")
_PARAMETERS = frozenset({*_FILTERS, "limit", "cursor"})
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MAX_MOMENT_LENGTH = 64  # an ISO 8601 time with microseconds and offset is 32 characters
CURSOR_DESCRIPTION = "Where the page starts: the cursor in the previous page's links.next"


class CallRecordItem(TypedDict):
    proxyCallId: str
    parentConnectionId: str | None
    method: str
    path: str
    status: int | None  # the upstream's; null when no upstream answered
    outcome: str  # "ok" or the error key
    error: str | None
    latencyMs: int
    bytesIn: int
    bytesOut: int
    truncated: bool
    principalId: str
    dialect: str
    createdAt: str


class OrganizationCallRecord(CallRecordItem):
    connectionId: str


class PageLinks(TypedDict):
    next: str | None


class CallPageAnswer(TypedDict):
    data: list[CallRecordItem]
    links: PageLinks


class OrganizationCallPage(TypedDict):
    data: list[OrganizationCallRecord]
    links: PageLinks


class OrganizationCallsQuery(BaseModel):
    """Mirrors the hand parser below: every parameter at most once, no other parameter, and an
    empty value counts as absent."""

    model_config = ConfigDict(extra="forbid")

    connection_id: str | None = Field(
        default=None,
        pattern=f"^{_UUID.pattern}$",
        description="Calls through this connection and its shared copies",
    )
    outcome: str | None = Field(
        default=None, pattern=f"^{OUTCOME_PATTERN.pattern}$", description="ok, or an error key"
    )
    ok: bool | None = Field(default=None, description="Only calls whose outcome is (true) or is not ok")
    status_class: StatusClass | None = Field(
        default=None, description="The upstream status class (any case); none: no upstream answer"
    )
    since: datetime | None = Field(default=None, description="From this time (inclusive; with a UTC offset)")
    until: datetime | None = Field(default=None, description="Up to this time (inclusive; with a UTC offset)")
    limit: int = Field(
        default=ORGANIZATION_PAGE_DEFAULT, ge=1, le=ORGANIZATION_PAGE_MAX, description="Calls per page"
    )
    cursor: str | None = Field(default=None, max_length=MAX_CURSOR_LENGTH, description=CURSOR_DESCRIPTION)


def call_record(record: CallRecord) -> CallRecordItem:
    """One audited call as both listings show it (a shared copy's calls name its parent)."""
    return {
        "proxyCallId": record.id,
        "parentConnectionId": record.parent_connection_id,
        "method": record.method,
        "path": record.path,
        "status": record.upstream_status,
        "outcome": record.outcome,
        "error": record.error_message,
        "latencyMs": record.latency_ms,
        "bytesIn": record.bytes_in,
        "bytesOut": record.bytes_out,
        "truncated": record.truncated,
        "principalId": record.principal_id,
        "dialect": record.dialect,
        "createdAt": timestamp(record.created_at),
    }


def page_limit(request: Request, *, default: int, maximum: int) -> int:
    """The ``limit`` query parameter: a whole number from 1 to ``maximum``; absent or empty is
    ``default``."""
    raw = request.query_params.get("limit") or str(default)
    # ASCII digits only, and few of them: int() takes other scripts' digits and refuses
    # thousands of them with an error of its own.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1 <= int(raw) <= maximum):
        raise invalid_parameter("limit", f"must be an integer from 1 to {maximum}")
    return int(raw)


def page_response(page: CallPage, path: str, parameters: Mapping[str, str]) -> JSONResponse:
    """``{"data": [records], "links": {"next": ...}}``: ``next`` is ``path`` with ``parameters``
    and the next page's cursor, or null on the last page."""
    body: CallPageAnswer = {
        "data": [call_record(record) for record in page.calls],
        "links": _links(page, path, parameters),
    }
    return JSONResponse(body)


def _links(page: CallPage, path: str, parameters: Mapping[str, str]) -> PageLinks:
    next_link = (
        f"{path}?{urlencode({**parameters, 'cursor': page.next_cursor})}" if page.next_cursor else None
    )
    return {"next": next_link}


def _organization_record(record: CallRecord) -> OrganizationCallRecord:
    return {**call_record(record), "connectionId": record.connection_id}


def _single_values(request: Request) -> dict[str, str]:
    """The query parameters, each given at most once and each one this listing knows; an empty
    value counts as absent."""
    values: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in _PARAMETERS:
            known = ", ".join(sorted(_PARAMETERS))
            raise invalid_parameter(name[:64], f"is not a parameter of this listing ({known})")
        if name in values:
            raise invalid_parameter(name, "may be given once")
        values[name] = value
    return {name: value for name, value in values.items() if value}


def _connection_id(raw: str) -> str:
    # A pattern rather than uuid.UUID(), which also takes braces, URNs and stray whitespace.
    if not _UUID.fullmatch(raw):
        raise invalid_parameter("connection_id", "must be a connection id (a UUID)")
    return raw.lower()


def _status_class(raw: str) -> StatusClass:
    try:
        return StatusClass(raw.lower())
    except ValueError:
        choices = ", ".join(status_class.value for status_class in StatusClass)
        raise invalid_parameter("status_class", f"must be one of {choices}") from None


def _moment(name: str, raw: str) -> datetime:
    try:
        # fromisoformat() stops reading at a NUL, so the rest of the value is checked here.
        if len(raw) > _MAX_MOMENT_LENGTH or not (raw.isascii() and raw.isprintable()):
            raise ValueError
        return datetime.fromisoformat(raw)
    except ValueError:
        raise invalid_parameter(
            name,
            "must be an ISO 8601 time with a UTC offset, like 2025-01-31T12:00:00Z (write + as %2B in a URL)",
        ) from None


def _filters(values: Mapping[str, str], request: Request) -> CallFilter:
    connection_id = values.get("connection_id")
    status_class = values.get("status_class")
    since, until = values.get("since"), values.get("until")
    return CallFilter(
        connection_id=None if connection_id is None else _connection_id(connection_id),
        outcome=values.get("outcome"),
        ok=query_flag(request, "ok") if "ok" in values else None,
        status_class=None if status_class is None else _status_class(status_class),
        since=None if since is None else _moment("since", since),
        until=None if until is None else _moment("until", until),
    )


@describe(
    summary="The organization's audited proxy calls",
    description="Every call through the organization's connections, newest first; the filters "
    "combine, and a filter that matches nothing is an empty page.",
    tag="Audit",
    extension=True,
    query=OrganizationCallsQuery,
    answers={200: Answer(OrganizationCallPage)},
)
@endpoint_for(Access.ADMINISTRATION)
async def organization_calls(request: Request, services: Services, principal: Principal) -> Response:
    """Every call of the caller's organization, newest first, filtered."""
    values = _single_values(request)
    filters = _filters(values, request)
    limit = page_limit(request, default=ORGANIZATION_PAGE_DEFAULT, maximum=ORGANIZATION_PAGE_MAX)
    page = await services.audit.organization_calls(
        principal.organization_id, filters, limit=limit, cursor=values.get("cursor")
    )
    kept = {name: values[name] for name in _FILTERS if name in values}
    body: OrganizationCallPage = {
        "data": [_organization_record(record) for record in page.calls],
        "links": _links(page, "/api/proxy/calls", {**kept, "limit": str(limit)}),
    }
    return JSONResponse(body)
