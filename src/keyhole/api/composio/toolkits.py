"""``/toolkits…``: the HTTP connection types of the catalog, seen as Composio toolkits (spec 4.6)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.composio import schemas
from keyhole.api.composio.endpoint import endpoint
from keyhole.api.responses import JSONResponse
from keyhole.connections.composio_mapping import is_toolkit
from keyhole.errors import NotFound
from keyhole.services import Services
from keyhole.tenancy.principal import Principal


@endpoint
async def list_toolkits(request: Request, services: Services, principal: Principal) -> Response:
    offset, limit = schemas.paging(request)
    search = (request.query_params.get("search") or "").lower()
    found = [
        t
        for t in services.catalog.all()
        if is_toolkit(t) and (search in t.id.lower() or search in t.name.lower())
    ]
    if request.query_params.get("type") == "custom" or request.query_params.get("managed_by") == "project":
        found = []
    if request.query_params.get("sort_by") != "alphabetically":
        found.sort(key=lambda t: (t.id != "api", t.id))  # the generic type first, then by slug
    items = [schemas.toolkit_item(t) for t in found[offset : offset + limit]]
    return JSONResponse(schemas.page(items, len(found), offset, limit))


@endpoint
async def get(request: Request, services: Services, principal: Principal) -> Response:
    slug = request.path_params["slug"]
    connection_type = services.catalog.get(slug) if slug in services.catalog else None
    if connection_type is None or not is_toolkit(connection_type):
        raise NotFound(f"toolkit {slug[:64]!r} not found", key="Toolkit_NotFound")
    return JSONResponse(schemas.toolkit_detail(connection_type))
