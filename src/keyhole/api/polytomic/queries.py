"""Query runner routes (spec 2.5, 2.6, 5): submit, read a page, cancel.

A page is served without re-serializing its rows: the stored JSON array of ``results`` is
streamed between a small prefix and suffix rendered here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from keyhole.api.polytomic.endpoint import endpoint
from keyhole.api.requests import read_json
from keyhole.api.responses import JSONResponse
from keyhole.errors import InvalidRequest
from keyhole.queries import QueryPage, QueryView
from keyhole.services import Services
from keyhole.tenancy.principal import Principal
from keyhole.timestamps import timestamp


def _data(view: QueryView) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": view.id,
        "status": view.status,
        "fields": view.fields,
        "count": view.count,
        "expires": timestamp(view.expires_at),
        "error": view.error,
    }
    if view.status == "done":
        data["truncated"] = view.truncated  # extension: a limit cut the result
    return data


def _links(query_id: str, page: QueryPage) -> dict[str, str | None]:
    def link(token: str | None) -> str | None:
        return None if token is None else f"/api/queries/{query_id}?page={token}"

    return {"next": link(page.next_token), "previous": link(page.previous_token)}


async def _sql(request: Request, services: Services) -> str | None:
    from_url = request.query_params.get("query")
    body = await read_json(request, services.settings.max_api_body_bytes)
    if body is None or body == {}:
        return from_url
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", key="invalid_body")
    from_body = body.get("query")
    if from_body is not None and not isinstance(from_body, str):
        raise InvalidRequest(
            "query must be a string of SQL", key="validation_error", metadata={"field": "query"}
        )
    if from_url is not None and from_body is not None and from_url != from_body:
        raise InvalidRequest(
            "the query is given twice (in the URL and in the body) and the two differ; send it once",
            key="validation_error",
            metadata={"field": "query"},
        )
    return from_url if from_url is not None else from_body


@endpoint
async def run_query(request: Request, services: Services, principal: Principal) -> Response:
    sql = await _sql(request, services)
    view = await services.queries.submit(principal, request.path_params["connection_id"], sql)
    return JSONResponse(
        {"data": {"id": view.id, "status": view.status, "expires": timestamp(view.expires_at)}}
    )


@endpoint
async def get_query(request: Request, services: Services, principal: Principal) -> Response:
    query_id = request.path_params["query_id"]
    page = await services.queries.read(principal, query_id, request.query_params.get("page") or None)
    links = _links(query_id, page)
    if page.results is None:
        return JSONResponse({"data": {**_data(page.view), "results": None}, "links": links})
    head = orjson.dumps(_data(page.view))
    prefix = b'{"data":' + head[:-1] + b',"results":'
    suffix = b'},"links":' + orjson.dumps(links) + b"}"
    return StreamingResponse(_spliced(prefix, page.results, suffix), media_type="application/json")


async def _spliced(prefix: bytes, results: AsyncIterator[bytes], suffix: bytes) -> AsyncIterator[bytes]:
    yield prefix
    async for chunk in results:
        yield chunk
    yield suffix


@endpoint
async def cancel_query(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.queries.cancel(principal, request.path_params["query_id"])
    return JSONResponse({"data": {**_data(view), "results": None}})
