"""Query runner routes (spec 2.5, 2.6, 5): submit, read a page, cancel, and (an extension) export
the whole result as one file.

A page is served without re-serializing its rows: the stored JSON array of ``results`` is
streamed between a small prefix and suffix rendered here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, NotRequired

import orjson
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from typing_extensions import TypedDict

from keyhole.api.openapi import Answer, describe
from keyhole.api.polytomic.endpoint import endpoint
from keyhole.api.requests import read_json
from keyhole.api.responses import JSONResponse
from keyhole.errors import InvalidRequest
from keyhole.queries import QueryPage, QueryView
from keyhole.queries.export_copies import byte_range
from keyhole.queries.exports import FORMATS, MEDIA_TYPES
from keyhole.services import Services
from keyhole.store.base import utcnow
from keyhole.tenancy.principal import Principal
from keyhole.timestamps import timestamp

_QueryStatus = Annotated[
    str, WithJsonSchema({"type": "string", "enum": ["created", "running", "done", "failed"]})
]


class QueryBody(BaseModel):
    """The SQL, here or as `?query=` (both: they must be the same); other fields are ignored."""

    model_config = ConfigDict(extra="allow")

    query: str | None = None


class QueryParameters(BaseModel):
    query: str | None = Field(default=None, description="The SQL, when the body does not carry it")


class PageParameters(BaseModel):
    page: str | None = Field(default=None, description="A page token from links.next or links.previous")


class ExportParameters(BaseModel):
    format: Annotated[str, WithJsonSchema({"type": "string", "enum": list(FORMATS)})] = Field(
        description="The file format: csv, ndjson, parquet or arrow (the Arrow IPC stream format)"
    )


class SubmittedQuery(TypedDict):
    id: str
    status: _QueryStatus
    expires: str  # when the results are deleted


class SubmittedQueryEnvelope(TypedDict):
    data: SubmittedQuery


class QueryProgress(TypedDict):
    """A Keyhole extension: the rows and bytes stored so far and the seconds run while the query
    runs, its totals once it is done; absent while it is queued and once it failed."""

    rows: int  # rows stored so far while running; all of them once done
    bytes: int  # bytes of the rows' JSON stored so far while running; all of them once done
    elapsed_seconds: float  # since it started (the server's clock), until it finished once done


class QueryData(TypedDict):
    id: str
    status: _QueryStatus
    fields: list[str] | None  # the column names, once done
    count: int | None  # rows in all pages, once done
    expires: str
    error: str | None
    truncated: NotRequired[bool]  # once done: a row or byte limit cut the result (Keyhole extension)
    # while running and once done, never for a failed query, whose stored rows are deleted
    # (Keyhole extension)
    progress: NotRequired[QueryProgress]


class QueryResults(QueryData):
    results: list[dict[str, Any]] | None  # this page's rows (column name -> value), once done


class QueryLinks(TypedDict):
    next: str | None
    previous: str | None


class QueryPageEnvelope(TypedDict):
    data: QueryResults
    links: QueryLinks


class CancelledQueryEnvelope(TypedDict):
    data: QueryResults


def _data(view: QueryView) -> QueryData:
    data: QueryData = {
        "id": view.id,
        "status": view.status,
        "fields": view.fields,
        "count": view.count,
        "expires": timestamp(view.expires_at),
        "error": view.error,
    }
    if view.status == "done":
        data["truncated"] = view.truncated  # extension: a limit cut the result
    progress = view.progress(utcnow())
    if progress is not None:
        data["progress"] = {
            "rows": progress.rows,
            "bytes": progress.bytes,
            "elapsed_seconds": progress.elapsed_seconds,
        }
    return data


def _links(query_id: str, page: QueryPage) -> QueryLinks:
    def link(token: str | None) -> str | None:
        return None if token is None else f"/api/queries/{query_id}?page={token}"

    return {"next": link(page.next_token), "previous": link(page.previous_token)}


async def _sql(request: Request, services: Services) -> str | None:
    from_url = request.query_params.get("query") or None  # an empty value counts as absent
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


@describe(
    summary="Run SQL on a database connection",
    description="The query runs asynchronously; read its pages with `GET /api/queries/{id}` until "
    "the results expire.",
    tag="Queries",
    body=QueryBody,
    body_required=False,
    body_examples={"select": {"query": "SELECT id, email FROM users ORDER BY id"}},
    query=QueryParameters,
    answers={200: Answer(SubmittedQueryEnvelope)},
    links={
        200: {
            "ReadQuery": {
                "operationId": "queries_get_query",
                "parameters": {"query_id": "$response.body#/data/id"},
            },
            "CancelQuery": {
                "operationId": "queries_cancel_query",
                "parameters": {"query_id": "$response.body#/data/id"},
            },
        }
    },
    errors=(409, 413, 422),
)
@endpoint
async def run_query(request: Request, services: Services, principal: Principal) -> Response:
    sql = await _sql(request, services)
    view = await services.queries.submit(principal, request.path_params["connection_id"], sql)
    body: SubmittedQueryEnvelope = {
        "data": {"id": view.id, "status": view.status, "expires": timestamp(view.expires_at)}
    }
    return JSONResponse(body)


@describe(
    summary="Read a query's status and a page of its results",
    description="`results` is null until the query is done; `links` name the pages around this one. "
    "`progress` (a Keyhole extension) counts the rows and bytes stored so far and the time run, "
    "while the query runs and once it is done. Expired results are a 410.",
    tag="Queries",
    query=PageParameters,
    answers={200: Answer(QueryPageEnvelope)},
    errors=(410,),
)
@endpoint
async def get_query(request: Request, services: Services, principal: Principal) -> Response:
    query_id = request.path_params["query_id"]
    page = await services.queries.read(principal, query_id, request.query_params.get("page") or None)
    links = _links(query_id, page)
    if page.results is None:
        pending: QueryPageEnvelope = {"data": {**_data(page.view), "results": None}, "links": links}
        return JSONResponse(pending)
    head = orjson.dumps(_data(page.view))
    prefix = b'{"data":' + head[:-1] + b',"results":'
    suffix = b'},"links":' + orjson.dumps(links) + b"}"
    return StreamingResponse(_spliced(prefix, page.results, suffix), media_type="application/json")


async def _spliced(prefix: bytes, results: AsyncIterator[bytes], suffix: bytes) -> AsyncIterator[bytes]:
    yield prefix
    async for chunk in results:
        yield chunk
    yield suffix


@describe(
    summary="Cancel a query",
    description="The query ends `failed` with the error `cancelled`; cancelling a query that "
    "already finished otherwise is a 409.",
    tag="Queries",
    answers={200: Answer(CancelledQueryEnvelope)},
    errors=(409, 410),
)
@endpoint
async def cancel_query(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.queries.cancel(principal, request.path_params["query_id"])
    body: CancelledQueryEnvelope = {"data": {**_data(view), "results": None}}
    return JSONResponse(body)


_EXPORT_MEDIA_TYPES = tuple(MEDIA_TYPES.values())


class _ClosingStream(StreamingResponse):
    """A streamed answer whose body is closed as soon as the answer ends, however it ends: a
    client gone mid-download leaves the body suspended until the garbage collector finds it, and
    closing it is what deletes an export's unfinished stored copy."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()


@describe(
    summary="Download a query's whole result as one file",
    description="A Keyhole extension. The complete result of a done query in one file: `csv` (RFC "
    "4180, a header row of the field names, CRLF line ends), `ndjson` (each row object of the pages "
    "on a line of its own), `parquet` or `arrow` (the Arrow IPC stream format), typed by column "
    "(integers, decimal(20,0) for unsigned 64-bit integers, doubles, booleans, dates, timestamps in "
    "microseconds, UTC for those with a zone, binary; any other column as text). Only the query's "
    "owner may download it, until the results expire (then 410), and only once the query is done "
    "(409 before). The first download of a file streams it while it is stored with the results; "
    "later ones send `Content-Length` and answer a single `Range` (206, or 416 past the end; a "
    "malformed or multi-range `Range` is ignored).",
    tag="Queries",
    extension=True,
    query=ExportParameters,
    answers={
        200: Answer(description="The whole file, as an attachment", media_type=_EXPORT_MEDIA_TYPES),
        206: Answer(description="The bytes asked for with `Range`", media_type=_EXPORT_MEDIA_TYPES),
    },
    errors=(409, 410, 416),
)
@endpoint
async def export_query(request: Request, services: Services, principal: Principal) -> Response:
    formats = request.query_params.getlist("format")
    export = await services.queries.export(
        principal, request.path_params["query_id"], formats[0] if len(formats) == 1 else None
    )
    headers = {
        "Content-Disposition": f'attachment; filename="{export.filename}"',
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if export.size is None or export.read is None:  # the first download: made while it is stored
        return _ClosingStream(export.chunks, media_type=export.media_type, headers=headers)
    headers["Accept-Ranges"] = "bytes"
    # No validator is ever sent, so an If-Range cannot match: the whole file goes (RFC 9110 13.1.5).
    wanted = None if "if-range" in request.headers else byte_range(request.headers.get("range"), export.size)
    if wanted is None:
        headers["Content-Length"] = str(export.size)
        return _ClosingStream(export.chunks, media_type=export.media_type, headers=headers)
    start, end = wanted
    headers["Content-Length"] = str(end - start)
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{export.size}"
    return _ClosingStream(
        await export.read(start, end), status_code=206, media_type=export.media_type, headers=headers
    )
