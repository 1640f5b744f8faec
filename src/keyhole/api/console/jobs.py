"""Jobs page of the console: the caller's own async proxy calls, newest first and paged, with
their running queries beside them. A finished call's body is fetched through a route that asks
for a freshly signed, short-lived URL when it is clicked: no download URL is ever in a page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyhole.api.console.endpoint import Viewer, console_page, redirect
from keyhole.api.console.queries import connection_names, shown_query
from keyhole.api.console.readable import ago, byte_size, span
from keyhole.api.console.templating import render
from keyhole.api.links import public_base_url
from keyhole.jobs import JobStatus
from keyhole.proxy.async_calls import AsyncCallSummary
from keyhole.services import Services
from keyhole.store.base import utcnow

JOBS_PER_PAGE = 25
_BADGES = {"queued": "", "running": "badge-warn", "done": "badge-ok", "failed": "badge-bad"}


@dataclass(frozen=True, slots=True)
class ShownCall:
    call: AsyncCallSummary
    connection: str
    state: str
    badge: str
    created: str
    finished: str
    took: str
    size: str


def _shown_call(call: AsyncCallSummary, names: dict[str, str], now: datetime) -> ShownCall:
    state = "queued" if call.status == JobStatus.CREATED else call.status.value
    return ShownCall(
        call=call,
        connection=names.get(call.connection_id or "", call.connection_id or "unknown"),
        state=state,
        badge=_BADGES.get(state, ""),
        created=ago(call.created_at, now),
        finished="" if call.finished_at is None else ago(call.finished_at, now),
        took="" if call.finished_at is None else span(call.finished_at - call.created_at),
        size="" if call.size is None else byte_size(call.size),
    )


@console_page()
async def listing(request: Request, services: Services, viewer: Viewer) -> Response:
    page = await services.async_proxy.calls(
        viewer.principal,
        limit=JOBS_PER_PAGE,
        before=request.query_params.get("before") or None,
        after=request.query_params.get("after") or None,
    )
    running = await services.queries.recent(viewer.principal, unfinished_only=True)
    names = await connection_names(
        services,
        viewer.principal,
        [call.connection_id for call in page.calls if call.connection_id]
        + [view.connection_id for view in running],
    )
    now = utcnow()
    return render(
        request,
        "jobs/list.html",
        {
            "calls": [_shown_call(call, names, now) for call in page.calls],
            "running": [shown_query(view, names, now) for view in running],
            "previous_href": None if page.newer is None else f"/console/jobs?after={page.newer}",
            "next_href": None if page.older is None else f"/console/jobs?before={page.older}",
        },
    )


@console_page()
async def download(request: Request, services: Services, viewer: Viewer) -> Response:
    """A fresh download URL of the caller's own finished call, minted now and followed at once."""
    url, _ = await services.async_proxy.body_url(
        viewer.principal, request.path_params["job_id"], public_base_url(request, services.settings)
    )
    return redirect(url)


routes: list[BaseRoute] = [
    Route("/jobs", listing, methods=["GET"]),
    Route("/jobs/{job_id}/download", download, methods=["GET"]),
]
