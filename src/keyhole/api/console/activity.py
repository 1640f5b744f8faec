"""Activity: the organization's audited calls (filtered, newest first, a page at a time), a chart
of the last day per connection, and one call's detail.

Access is the REST API's: the organization-wide log (``GET /api/proxy/calls``) needs an
administrator, and any key of the organization may read the calls of a connection it reaches
(``GET /api/connections/{id}/proxy/calls``). So an administrator sees every call, those of
deleted connections too; anyone else sees one connection's calls at a time, the chart of the
organization's connections, and the detail of a call through one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyhole.api.console.activity_chart import FAILED_FILL, GEOMETRY, OK_FILL, UPSTREAM_ERROR_FILL, chart
from keyhole.api.console.endpoint import Viewer, console_page, redirect
from keyhole.api.console.playground_view import reason
from keyhole.api.console.readable import byte_size
from keyhole.api.console.templating import render
from keyhole.audit.query import CallFilter, StatusClass, invalid_parameter
from keyhole.audit.records import CallRecord, is_call_id
from keyhole.errors import NotFound
from keyhole.services import Services
from keyhole.store.base import utcnow

PAGE_SIZE = 50
PERIODS: dict[str, tuple[str, timedelta | None]] = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "all": ("Any time", None),
    "custom": ("From … to … (below)", None),
}
DEFAULT_PERIOD = "24h"
_CONNECTION_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MAX_MOMENT = 64
_MINUTE_FORM = len("2025-01-31T12:00")  # what a datetime-local input sends
_OK = {"true": True, "false": False}


def _moment(name: str, raw: str, *, end: bool = False) -> datetime:
    """A time from the form (a ``datetime-local`` value, read as UTC) or a link (with an offset).
    The form's times are minutes: an ``end`` given as one includes that whole minute."""
    try:
        if len(raw) > _MAX_MOMENT or not (raw.isascii() and raw.isprintable()):
            raise ValueError
        moment = datetime.fromisoformat(raw)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if end and len(raw) == _MINUTE_FORM:
            moment += timedelta(minutes=1, microseconds=-1)
        return moment
    except (ValueError, OverflowError):
        raise invalid_parameter(name, "must be a date and time in UTC, like 2025-01-31T12:00") from None


@dataclass(frozen=True, slots=True)
class Filters:
    """What the listing shows, as its URL says; every link of the page keeps it."""

    connection: str | None = None
    ok: bool | None = None
    outcome: str | None = None
    status: StatusClass | None = None
    period: str = DEFAULT_PERIOD
    start: datetime | None = None  # a custom period's bounds, both inclusive
    end: datetime | None = None

    @classmethod
    def parse(cls, params: QueryParams) -> Filters:
        connection, ok, status = params.get("connection"), params.get("ok"), params.get("status")
        if connection and not _CONNECTION_ID.fullmatch(connection):
            raise invalid_parameter("connection", "must be a connection id")
        if ok and ok not in _OK:
            raise invalid_parameter("ok", "must be true or false")
        try:
            status_class = StatusClass(status.lower()) if status else None
        except ValueError:
            raise invalid_parameter("status", "must be 2xx, 3xx, 4xx, 5xx or none") from None
        start, end = params.get("from"), params.get("to")
        period = params.get("period") or ("custom" if start or end else DEFAULT_PERIOD)
        if period not in PERIODS:
            raise invalid_parameter("period", f"must be one of {', '.join(PERIODS)}")
        custom = period == "custom"
        filters = cls(
            connection=connection.lower() if connection else None,
            ok=_OK[ok] if ok else None,
            outcome=params.get("outcome") or None,
            status=status_class,
            period=period,
            start=_moment("from", start) if custom and start else None,
            end=_moment("to", end, end=True) if custom and end else None,
        )
        if filters.start and filters.end and filters.start > filters.end:
            raise invalid_parameter("from", "must not be later than to")
        filters.call_filter(utcnow())  # the core's own checks (the outcome's form) before any read
        return filters

    def call_filter(self, now: datetime) -> CallFilter:
        span = PERIODS[self.period][1]
        since = self.start if self.period == "custom" else (None if span is None else now - span)
        return CallFilter(
            connection_id=self.connection,
            outcome=self.outcome,
            ok=self.ok,
            status_class=self.status,
            since=since,
            until=self.end,
        )

    def href(self, **changes: Any) -> str:
        """This listing's URL with ``changes`` (``cursor`` too, which is never kept)."""
        cursor = changes.pop("cursor", None)
        changed = replace(self, **changes)
        pairs = [
            ("connection", changed.connection),
            ("ok", None if changed.ok is None else str(changed.ok).lower()),
            ("outcome", changed.outcome),
            ("status", None if changed.status is None else changed.status.value),
            ("period", None if changed.period == DEFAULT_PERIOD else changed.period),
            ("from", _local(changed.start) if changed.period == "custom" else None),
            ("to", _local(changed.end) if changed.period == "custom" else None),
            ("cursor", cursor),
        ]
        query = urlencode([(name, value) for name, value in pairs if value])
        return f"/console/activity?{query}" if query else "/console/activity"


def _local(moment: datetime | None) -> str | None:
    """A UTC time as a ``datetime-local`` input holds it: its minute."""
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M}"


def _hour_href(connection_id: str, hour: datetime) -> str:
    """The listing of one connection's calls in one hour: where a bar of the chart leads."""
    end = hour + timedelta(hours=1, microseconds=-1)
    return Filters(connection=connection_id, period="custom", start=hour, end=end).href()


@console_page()
async def listing(request: Request, services: Services, viewer: Viewer) -> Response:
    principal = viewer.principal
    filters = Filters.parse(request.query_params)
    connections = await services.connections.labels(principal)
    names = {label.id: label.name for label in connections}
    if filters.connection is not None and not viewer.is_admin and filters.connection not in names:
        raise NotFound(f"no connection {filters.connection} in this organization", key="connection_not_found")
    page = None
    if viewer.is_admin or filters.connection is not None:
        page = await services.audit.organization_calls(
            principal.organization_id,
            filters.call_filter(utcnow()),
            limit=PAGE_SIZE,
            cursor=request.query_params.get("cursor") or None,
        )

    def charted(connection_id: str) -> bool:
        if filters.connection is not None:
            return connection_id == filters.connection
        return viewer.is_admin or connection_id in names

    drawn = chart(await services.audit.last_day(principal.organization_id), names, charted)
    context = {
        "filters": filters,
        "connections": connections,
        "names": names,
        "page": page,
        "chart": drawn,
        "periods": PERIODS,
        "statuses": list(StatusClass),
        "local": _local,
        "hour_href": _hour_href,
        "fills": {"ok": OK_FILL, "upstream": UPSTREAM_ERROR_FILL, "failed": FAILED_FILL},
        "geometry": GEOMETRY,
        "first_page": request.query_params.get("cursor") is None,
    }
    return render(request, "activity/list.html", context)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What happened to a call, in plain words."""

    kind: str  # ok | upstream | failed
    text: str


def verdict(record: CallRecord) -> Verdict:
    status = record.upstream_status
    phrase = "" if status is None else f"{status} {reason(status)}".rstrip()
    if record.outcome != "ok":
        after = f" after the upstream answered {phrase}" if phrase else ""
        message = record.error_message or "no message was recorded"
        return Verdict("failed", f"Keyhole refused or could not complete this call{after}: {message}")
    if status is not None and status >= 400:
        return Verdict(
            "upstream",
            f"The call went through, and the upstream answered {phrase}: "
            "the upstream refused it or failed (its answer says why).",
        )
    return Verdict("ok", f"The call went through, and the upstream answered {phrase}.")


def _not_found(call_id: str) -> NotFound:
    return NotFound(
        f"no call {call_id[:64]!r} in this organization's activity (a call made a moment ago shows "
        "within seconds)",
        key="call_not_found",
    )


@console_page()
async def detail(request: Request, services: Services, viewer: Viewer) -> Response:
    call_id = request.path_params["call_id"]
    principal = viewer.principal
    record = await services.audit.call(principal.organization_id, call_id)
    if record is None:
        raise _not_found(call_id)
    try:
        connection = await services.connections.get(principal, record.connection_id)
    except NotFound:
        if not viewer.is_admin:  # a member reads the calls of connections it reaches
            raise _not_found(call_id) from None
        connection = None
    context = {
        "record": record,
        "connection": connection,
        "verdict": verdict(record),
        "byte_size": byte_size,
        "filters": Filters(),
    }
    return render(request, "activity/detail.html", context)


@console_page()
async def find(request: Request, services: Services, viewer: Viewer) -> Response:
    """The call-id box: straight to the call's page."""
    call_id = request.query_params.get("call", "").strip().lower()
    if not is_call_id(call_id):
        raise invalid_parameter("call", "must be a call id, like 0f8e2a8c-6b1d-4c2e-9a7b-3d5e6f708192")
    return redirect(f"/console/activity/{call_id}")


routes: list[BaseRoute] = [
    Route("/activity", listing, methods=["GET"]),
    Route("/activity/find", find, methods=["GET"]),
    Route("/activity/{call_id}", detail, methods=["GET"]),
]
