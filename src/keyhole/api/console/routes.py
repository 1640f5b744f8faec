"""The console's routes, mounted at ``/console`` (HTML for browsers, so outside the OpenAPI
documents), and ``/``, which leads there."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from keyhole.api.console import (
    activity,
    assets,
    connections,
    jobs,
    keys,
    playground,
    queries,
    sign_in,
    users,
)
from keyhole.api.console.endpoint import redirect
from keyhole.api.openapi import Answer, describe


async def _home(request: Request) -> Response:
    return redirect(sign_in.HOME)


@describe(
    summary="The web console",
    tag="Console",
    public=True,
    answers={303: Answer(description="See the web console at /console")},
)
async def root(request: Request) -> Response:
    return redirect("/console/")


_pages: list[BaseRoute] = [
    Route("/", _home, methods=["GET"]),
    Route("/sign-in", sign_in.sign_in_form, methods=["GET"]),
    Route("/sign-in", sign_in.sign_in, methods=["POST"]),
    Route("/sign-out", sign_in.sign_out, methods=["POST"]),
    Route("/static/{digest}/{name}", assets.static, methods=["GET"]),
    *connections.routes,
    *playground.routes,
    *activity.routes,
    *queries.routes,
    *jobs.routes,
    *keys.routes,
    *users.routes,
]

root_route = Route("/", root, methods=["GET"])
console = Mount("/console", routes=_pages)
