"""``/toolkits…``: the HTTP connection types of the catalog, seen as Composio toolkits (spec 4.6)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.composio import params, renderers
from keyhole.api.composio.endpoint import endpoint
from keyhole.api.openapi import Answer, describe
from keyhole.api.responses import JSONResponse
from keyhole.connections.composio_mapping import find_toolkits, toolkit
from keyhole.services import Services
from keyhole.tenancy.principal import Principal


@describe(
    summary="List toolkits",
    description="The HTTP connection types of the catalog; api is the generic one (any base URL).",
    tag="Toolkits",
    query=params.ToolkitListQuery,
    answers={200: Answer(renderers.Page[renderers.Toolkit])},
)
@endpoint
async def list_toolkits(request: Request, services: Services, principal: Principal) -> Response:
    offset, limit = params.paging(request)
    query = request.query_params
    found = find_toolkits(
        services.catalog,
        search=query.get("search") or "",
        custom_only=query.get("type") == "custom" or query.get("managed_by") == "project",
        alphabetical=query.get("sort_by") == "alphabetically",
    )
    items = [renderers.toolkit_item(t) for t in found[offset : offset + limit]]
    return JSONResponse(params.page(items, len(found), offset, limit))


@describe(summary="Get a toolkit", tag="Toolkits", answers={200: Answer(renderers.ToolkitDetail)})
@endpoint
async def get(request: Request, services: Services, principal: Principal) -> Response:
    return JSONResponse(renderers.toolkit_detail(toolkit(services.catalog, request.path_params["slug"])))
