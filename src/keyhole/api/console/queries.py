"""Queries pages of the console: an SQL editor over the caller's database connections, a query's
live status (a fragment polled every second), cancel, one stored page of its result at a time
(Previous/Next follow the REST API's page tokens; a stored page longer than a screen is shown a
screen at a time), and the whole result as CSV.

Everything here is the caller's own: the query service answers 404 for anyone else's query and
410 once its results expired, and those answers become the error page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from keyhole.api.console.endpoint import Viewer, console_page, redirect
from keyhole.api.console.readable import ago, byte_size, clock, span, until
from keyhole.api.console.security import secured
from keyhole.api.console.templating import render
from keyhole.api.middleware import note_error
from keyhole.errors import Conflict, InvalidRequest, KeyholeError
from keyhole.queries import QueryView, cell_text, page_rows
from keyhole.queries.execution import CANCELLED
from keyhole.services import Services
from keyhole.store.base import utcnow
from keyhole.tenancy.principal import Principal

RECENT_QUERIES = 20
GRID_ROWS = 500  # rows on one screen: a longer stored page is shown a screen at a time
CLIP_CHARACTERS = 200  # a longer cell shows this much and folds the rest
_ROW_NUMBER = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class Cell:
    text: str | None  # None: the value is NULL
    numeric: bool
    clipped: str | None  # the start of a long text, shown folded

    @classmethod
    def of(cls, value: Any) -> Cell:
        text = cell_text(value)
        if text is None:
            return _NULL
        clipped = text[:CLIP_CHARACTERS] if len(text) > CLIP_CHARACTERS else None
        return cls(text, type(value) in (int, float), clipped)  # a boolean is no number here


_NULL = Cell(None, numeric=False, clipped=None)


@dataclass(frozen=True, slots=True)
class ShownQuery:
    """A query as its pages and listings show it."""

    view: QueryView
    connection: str  # its name, or its id once deleted
    state: str  # queued, running, done, cancelled, failed
    badge: str
    submitted: str
    timer: str  # queued/running for, or how long it ran
    progress: str  # while running: the rows and bytes stored so far
    expires: str


_BADGES = {
    "queued": "",
    "running": "badge-warn",
    "done": "badge-ok",
    "cancelled": "badge-warn",
    "failed": "badge-bad",
}


def shown_query(view: QueryView, names: dict[str, str], now: datetime) -> ShownQuery:
    if view.status == "failed":
        state = "cancelled" if view.error_key == CANCELLED else "failed"
    else:
        state = {"created": "queued", "running": "running"}.get(view.status, view.status)
    elapsed = view.elapsed_seconds(now)
    progress = ""
    if view.status == "created":
        timer = clock(now - view.created_at)
    elif elapsed is None:
        timer = ""
    elif view.status == "running":
        timer = clock(timedelta(seconds=elapsed))
        rows = f"{view.rows_so_far:,} row{'' if view.rows_so_far == 1 else 's'}"
        progress = f"{rows}, {byte_size(view.bytes_so_far)} so far"
    else:
        timer = span(timedelta(seconds=elapsed))
    return ShownQuery(
        view=view,
        connection=names.get(view.connection_id, view.connection_id),
        state=state,
        badge=_BADGES.get(state, ""),
        submitted=ago(view.created_at, now),
        timer=timer,
        progress=progress,
        expires=until(view.expires_at, now),
    )


async def connection_names(services: Services, principal: Principal, ids: Iterable[str]) -> dict[str, str]:
    """The names of these connections of the caller's organization (a deleted one is left out),
    from one read of the organization's labels: no connection is loaded or decrypted."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {
        label.id: label.name for label in await services.connections.labels(principal) if label.id in wanted
    }


# -- the editor ---------------------------------------------------------------------------------


@console_page()
async def editor(request: Request, services: Services, viewer: Viewer) -> Response:
    return await _editor(request, services, viewer, connection_id=request.query_params.get("connection", ""))


@console_page()
async def run(request: Request, services: Services, viewer: Viewer) -> Response:
    form = viewer.form.only("connection_id", "sql")
    connection_id = form.get("connection_id")
    sql = form.get("sql")
    try:
        view = await services.queries.submit(viewer.principal, connection_id, sql)
    except KeyholeError as error:  # the form again, with what was typed and why it was refused
        note_error(request.scope, error.key)
        return await _editor(request, services, viewer, connection_id=connection_id, sql=sql, error=error)
    return redirect(f"/console/queries/{view.id}")


async def _editor(
    request: Request,
    services: Services,
    viewer: Viewer,
    *,
    connection_id: str,
    sql: str = "",
    error: KeyholeError | None = None,
) -> Response:
    connections = await services.queries.sql_connections(viewer.principal)
    recent = await services.queries.recent(viewer.principal, limit=RECENT_QUERIES)
    names = {connection.id: connection.name for connection in connections}
    now = utcnow()
    return render(
        request,
        "queries/editor.html",
        {
            "connections": connections,
            "selected": connection_id,
            "sql": sql,
            "error": error,
            "recent": [shown_query(view, names, now) for view in recent],
        },
        status_code=error.status if error is not None else 200,
    )


# -- one query ----------------------------------------------------------------------------------


@console_page()
async def query(request: Request, services: Services, viewer: Viewer) -> Response:
    """One query: its status, or one screen of one stored page of its result. The URL holds the
    REST API's page token (``page``) and, for a stored page longer than a screen, the row it
    starts at (``from``)."""
    page_token = request.query_params.get("page") or None
    page = await services.queries.read(viewer.principal, request.path_params["query_id"], page_token)
    rows = [] if page.results is None else await page_rows(page.results)
    start = _screen_start(request.query_params.get("from"), len(rows))
    fields = page.view.fields or []
    cells = [[Cell.of(row.get(name)) for name in fields] for row in rows[start : start + GRID_ROWS]]
    names = await connection_names(services, viewer.principal, [page.view.connection_id])

    def link(token: str | None, row: int | str = 0) -> str:
        parameters = ([f"page={token}"] if token else []) + ([f"from={row}"] if row else [])
        return f"/console/queries/{page.view.id}" + ("?" + "&".join(parameters) if parameters else "")

    if start + GRID_ROWS < len(rows):
        next_href: str | None = link(page_token, start + GRID_ROWS)
    else:
        next_href = None if page.next_token is None else link(page.next_token)
    if start > 0:
        previous_href: str | None = link(page_token, max(start - GRID_ROWS, 0))
    else:
        previous_href = None if page.previous_token is None else link(page.previous_token, "end")
    return render(
        request,
        "queries/query.html",
        {
            "query": shown_query(page.view, names, utcnow()),
            "fields": fields,
            "numeric_fields": _numeric_columns(cells, len(fields)),
            "rows": cells,
            "page_number": page.number + 1,
            "page_rows": len(rows),
            "first_row": start + 1,
            "last_row": start + len(cells),
            "previous_href": previous_href,
            "next_href": next_href,
        },
    )


def _screen_start(raw: str | None, rows: int) -> int:
    """The row of the stored page a screen starts at: ``from`` as a row number, or ``end`` for
    the last screen (where Previous from the next stored page lands)."""
    if not raw:
        return 0
    if raw == "end":
        return max(rows - 1, 0) // GRID_ROWS * GRID_ROWS
    if not _ROW_NUMBER.fullmatch(raw) or int(raw) >= max(rows, 1):
        raise InvalidRequest(
            f"from must be a row number of this page (0 to {max(rows - 1, 0)}) or end",
            key="invalid_row_offset",
            metadata={"field": "from"},
        )
    return int(raw)


def _numeric_columns(cells: list[list[Cell]], width: int) -> list[bool]:
    """Which columns of this page hold numbers only (NULL aside): their headings align right."""
    columns = [[row[index] for row in cells if row[index].text is not None] for index in range(width)]
    return [bool(column) and all(cell.numeric for cell in column) for column in columns]


@console_page()
async def status(request: Request, services: Services, viewer: Viewer) -> Response:
    """The status fragment the query page polls: it stops polling (and reloads the page) once
    the query has finished."""
    view = await services.queries.settled(viewer.principal, request.path_params["query_id"], within_seconds=0)
    return render(request, "queries/status.html", {"query": shown_query(view, {}, utcnow())})


@console_page()
async def cancel(request: Request, services: Services, viewer: Viewer) -> Response:
    viewer.form.only()  # the button's form holds its security token alone
    query_id = request.path_params["query_id"]
    try:
        view = await services.queries.cancel(viewer.principal, query_id)
    except Conflict as finished:  # it ended on its own meanwhile: its page says how
        if finished.key != "query_finished":
            raise
        return redirect(f"/console/queries/{query_id}")
    return redirect(f"/console/queries/{view.id}")


@console_page()
async def result_csv(request: Request, services: Services, viewer: Viewer) -> Response:
    export = await services.queries.export_csv(
        viewer.principal,
        request.path_params["query_id"],
        neutralise_formulas=request.query_params.get("neutralise") == "1",
        bom=request.query_params.get("bom") == "1",
    )
    response = StreamingResponse(
        export.chunks,
        media_type=export.media_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )
    return secured(response)


routes: list[BaseRoute] = [
    Route("/queries", editor, methods=["GET"]),
    Route("/queries", run, methods=["POST"]),
    Route("/queries/{query_id}", query, methods=["GET"]),
    Route("/queries/{query_id}/status", status, methods=["GET"]),
    Route("/queries/{query_id}/cancel", cancel, methods=["POST"]),
    Route("/queries/{query_id}/result.csv", result_csv, methods=["GET"]),
]
