"""Connections pages of the console."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyhole.api.console.endpoint import Viewer, console_page
from keyhole.api.console.templating import render
from keyhole.services import Services


@console_page()
async def listing(request: Request, services: Services, viewer: Viewer) -> Response:
    connections = await services.connections.list(viewer.principal)
    return render(request, "connections/list.html", {"connections": connections})


routes: list[BaseRoute] = [Route("/connections", listing, methods=["GET"])]
