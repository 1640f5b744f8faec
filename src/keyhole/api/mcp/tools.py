"""The tools: each one's name, description, arguments, result and hints, and what it does.

Every tool reaches the core the REST routes reach: the proxy service (contract, rate limits,
egress policy, echo scrubbing, audit as dialect ``mcp``), the query runner and the connection
service. Here only arguments are translated and results shaped for an agent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Generic, TypeVar

import mcp_types as types
import orjson
from pydantic import BaseModel, TypeAdapter

from keyhole.api.mcp import reach, schemas
from keyhole.api.mcp.reach import Caller
from keyhole.api.mcp.values import exact_json, parse_json
from keyhole.errors import InvalidRequest
from keyhole.proxy import contract
from keyhole.proxy.binary import BlobSink
from keyhole.proxy.request import ProxyCall, flatten_query
from keyhole.proxy.response import is_json
from keyhole.proxy.service import ProxyInfo, ProxyResult
from keyhole.proxy.spill import Spill
from keyhole.queries.execution import QueryLimits
from keyhole.queries.service import QueryView
from keyhole.services import Services
from keyhole.store.base import utcnow
from keyhole.timestamps import timestamp

Arguments = TypeVar("Arguments", bound=BaseModel)

SQL_PAGE_BYTES = 32_768  # a page of rows stops growing past this much JSON; no row may be longer
_PAGE_SLACK = 65_536  # a stored page's JSON beyond its rows' (brackets, separators)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A tool's successful result: its structured content, the line that leads its text block
    (what an agent sees first in hosts that show only text) and any links to resources."""

    structured: Mapping[str, Any]
    headline: str
    links: Sequence[types.ResourceLink] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Hints:
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool


READS_KEYHOLE = Hints(read_only=True, destructive=False, idempotent=True, open_world=False)
READS_UPSTREAM = Hints(read_only=True, destructive=False, idempotent=True, open_world=True)
CHANGES_UPSTREAM = Hints(read_only=False, destructive=True, idempotent=False, open_world=True)


@dataclass(frozen=True, slots=True)
class Tool(Generic[Arguments]):
    name: str
    title: str
    description: str
    arguments: type[Arguments]
    result: Any  # the TypedDict of its structured content
    hints: Hints
    run: Callable[[Services, Caller, Arguments], Awaitable[Outcome]]
    in_sessions: bool = True  # also served on a tool router session's URL

    def definition(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.arguments.model_json_schema(),
            output_schema=TypeAdapter(self.result).json_schema(),
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=self.hints.read_only,
                destructive_hint=self.hints.destructive,
                idempotent_hint=self.hints.idempotent,
                open_world_hint=self.hints.open_world,
            ),
        )


def _page(total: int, offset: int, limit: int) -> int | None:
    return offset + limit if offset + limit < total else None


# -- connections ---------------------------------------------------------------------------------


async def list_connections(services: Services, caller: Caller, args: schemas.ListConnections) -> Outcome:
    shown, total = await reach.connections(
        services, caller, kind=args.kind, search=args.search, offset=args.offset, limit=args.limit
    )
    listed: schemas.ConnectionList = {
        "connections": shown,
        "total": total,
        "next_offset": _page(total, args.offset, args.limit),
    }
    return Outcome(listed, f"{len(shown)} of {total} connections")


def _http_contract(info: ProxyInfo) -> schemas.HttpContract:
    target = info.target
    limits = target.limits
    return {
        "base_url": str(target.base_url),
        "allowed_methods": list(contract.ALLOWED_METHODS),
        "read_only_methods": sorted(contract.SAFE_METHODS),
        "locked_headers": list(target.credential_headers),
        "locked_query": list(target.credential_query),
        "inherited_headers": dict(target.inherited_headers),
        "inherited_query": dict(target.inherited_query),
        "blocked_request_headers": [
            *contract.BLOCKED_REQUEST_HEADERS,
            *contract.BLOCKED_REQUEST_HEADER_PATTERNS,
        ],
        "path_rule": contract.PATH_RULE,
        "max_request_body_bytes": limits.max_request_body_bytes,
        "max_body_bytes": limits.max_async_body_bytes,
        "inline_max_bytes": schemas.INLINE_MAX_BYTES,
        "timeout_ms": limits.timeout_ms,
        "rate_limits": {
            "connection_per_minute": limits.rate_limit_per_minute,
            "organization_per_minute": info.organization_rate_limit_per_minute,
        },
        "scrub_echoed_secrets": limits.scrub_echoed_secrets,
    }


async def describe_connection(
    services: Services, caller: Caller, args: schemas.DescribeConnection
) -> Outcome:
    if caller.session is not None:
        target = await reach.http_target(services, caller, args.connection)
        info = await services.proxy.info_for(target)
        described: schemas.ConnectionContract = {
            "connection": await reach.session_summary(services, caller, args.connection, target, None),
            "http": _http_contract(info),
            "sql": None,
        }
        return Outcome(described, f"{args.connection}: HTTP API at {target.base_url}")
    view = await reach.view(services, caller, args.connection)
    summary = await reach.summary(services, caller, view)
    http: schemas.HttpContract | None = None
    sql: schemas.SqlContract | None = None
    if view.type.kind == "http":
        http = _http_contract(await services.proxy.info(caller.principal, view.id))
    else:
        limits = QueryLimits.from_configuration(view.configuration)
        sql = {
            "dialect": view.type.sql.dialect if view.type.sql else "sql",
            "read_only": limits.read_only,
            "statement_timeout_ms": limits.statement_timeout_ms,
            "max_rows": limits.max_rows,
            "max_bytes": limits.max_bytes,
            "page_max_rows": schemas.PAGE_MAX_ROWS,
        }
    described = {"connection": summary, "http": http, "sql": sql}
    return Outcome(described, summary["summary"])


async def list_connection_types(
    services: Services, caller: Caller, args: schemas.ListConnectionTypes
) -> Outcome:
    found: list[schemas.ConnectionTypeSummary] = [
        {"id": item.id, "name": item.name, "kind": item.kind}
        for item in services.catalog.all()
        if (args.kind is None or item.kind == args.kind) and reach.matches(args.search, item.id, item.name)
    ]
    shown = found[args.offset : args.offset + args.limit]
    listed: schemas.ConnectionTypeList = {
        "types": shown,
        "total": len(found),
        "next_offset": _page(len(found), args.offset, args.limit),
    }
    return Outcome(listed, f"{len(shown)} of {len(found)} connection types")


# -- HTTP calls ----------------------------------------------------------------------------------


def _request_body(args: schemas.HttpGet) -> tuple[bytes | None, str | None]:
    if not isinstance(args, schemas.HttpRequest):
        return None, None
    if args.body_text is not None:
        if args.body is not None:
            raise InvalidRequest("send either body (JSON) or body_text, not both", key="invalid_arguments")
        return args.body_text.encode(), args.content_type or "text/plain; charset=utf-8"
    if args.content_type is not None:
        raise InvalidRequest(
            "content_type goes with body_text; a JSON body is sent as application/json",
            key="invalid_arguments",
        )
    if args.body is None:
        return None, None
    try:  # not orjson: it would cut an integer beyond 64 bits and send NaN as null
        encoded = json.dumps(args.body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise InvalidRequest(
            "body holds NaN or Infinity, which JSON cannot send", key="invalid_arguments"
        ) from None
    return encoded.encode(), "application/json"


def _call(args: schemas.HttpGet) -> ProxyCall:
    body, content_type = _request_body(args)
    return ProxyCall(
        method=args.method,
        path=args.path,
        headers=args.headers or {},
        query=None if args.query is None else flatten_query(args.query),
        body=body,
        content_type=content_type,
        envelope_bytes=len(body or b""),
    )


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _http_result(result: ProxyResult) -> Outcome:
    stored = result.binary
    download: schemas.Download | None = None
    links: list[types.ResourceLink] = []
    if stored is not None:
        download = {
            "url": stored.url,
            "expires_at": timestamp(stored.expires_at) or "",
            "size_bytes": stored.size,
            "content_type": stored.content_type,
            "complete": not result.truncated,
        }
        links.append(
            types.ResourceLink(
                uri=stored.url,
                name=f"body of call {result.call_id}",
                mime_type=stored.content_type or None,
                size=stored.size,
            )
        )
    body: Any = None
    preview: str | None = None
    kind: schemas.BodyKind
    if stored is not None and not result.spilled:
        kind = "binary"
    elif not result.body:
        kind = "none"
    elif result.body_encoding == "base64":  # bytes that are not UTF-8 under a text content type
        kind, body = ("binary", None) if result.spilled else ("base64", result.body)
    elif result.spilled:
        kind, preview = ("json" if is_json(result.content_type) else "text"), result.body
    else:
        parsed, body = parse_json(result.body) if is_json(result.content_type) else (False, result.body)
        kind = "json" if parsed else "text"
    shown: schemas.HttpResult = {
        "status": result.status,
        "ok": 200 <= result.status < 300,
        "headers": {str(name): value for name, value in result.headers.items()},
        "content_type": result.content_type,
        "body_kind": kind,
        "body": body,
        "body_preview": preview,
        "truncated": result.truncated or result.spilled,
        "size_bytes": result.body_bytes,
        "download": download,
        "call_id": result.call_id,
        "latency_ms": result.latency_ms,
    }
    headline = f"HTTP {result.status} {_reason(result.status)}".rstrip()
    if result.spilled:
        headline += (
            f"; {result.body_bytes} bytes, too long to inline: body_preview holds the start, "
            "download.url the whole"
        )
    elif kind == "binary" and download is not None:
        headline += f"; {download['content_type']} body of {download['size_bytes']} bytes at download.url"
    return Outcome(shown, headline, links)


async def http_call(services: Services, caller: Caller, args: schemas.HttpGet) -> Outcome:
    target = await reach.http_target(services, caller, args.connection)
    sink = BlobSink(
        services.blobs, lambda: caller.base_url, ttl_seconds=services.settings.blob_url_ttl_seconds
    )
    result = await services.proxy.execute(
        caller.principal,
        target,
        lambda: _call(args),
        dialect="mcp",
        binary_sink=sink,
        spill=Spill(args.max_inline_bytes, sink),
    )
    return _http_result(result)


# -- SQL -----------------------------------------------------------------------------------------


def _token(query_id: str, stored: str | None, offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([query_id, stored, offset])).decode().rstrip("=")


def _bad_token() -> InvalidRequest:
    return InvalidRequest(
        "page_token is not a token this server gave out for this query; pass next_page_token unchanged",
        key="invalid_page_token",
    )


def _position(query_id: str, token: str | None) -> tuple[str | None, int]:
    """The stored page's own token and the row offset in it that ``token`` names."""
    if token is None:
        return None, 0
    try:
        named, stored, offset = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        raise _bad_token() from None
    if named != query_id or not (stored is None or isinstance(stored, str)):
        raise _bad_token()
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise _bad_token()
    return stored, offset


def _sql_result(view: QueryView, rows: list[list[Any]], next_token: str | None) -> Outcome:
    failed = view.status == "failed"
    shown: schemas.SqlResult = {
        "query_id": view.id,
        "status": view.status,  # type: ignore[typeddict-item]
        "fields": view.fields,
        "rows": rows,
        "row_count": view.count,
        "truncated": view.truncated,
        "next_page_token": next_token,
        "expires_at": timestamp(view.expires_at) or "",
        "error": {"code": view.error_key or "query_failed", "message": view.error or ""} if failed else None,
    }
    progress = view.progress(utcnow())
    if progress is not None:
        shown["progress"] = {
            "rows": progress.rows,
            "bytes": progress.bytes,
            "elapsed_seconds": progress.elapsed_seconds,
        }
    if failed:
        headline = f"query failed: {view.error}"
    elif view.status == "done":
        more = "; more with next_page_token" if next_token else ""
        headline = f"{len(rows)} of {view.count} rows{more}"
    elif view.status == "running" and progress is not None:
        headline = (
            f"query running for {progress.elapsed_seconds:.1f} s, {progress.rows} rows so far: call "
            "keyhole_sql_results with query_id to wait for it"
        )
    else:
        headline = f"query {view.status}: call keyhole_sql_results with query_id to wait for it"
    return Outcome(shown, headline)


def _row_too_large(query_id: str, size: int) -> InvalidRequest:
    return InvalidRequest(
        f"a row of this result holds more JSON than a tool result may ({size} bytes, at most "
        f"{SQL_PAGE_BYTES}); select fewer or shorter columns (substr, length), or read the rows with "
        f"GET /api/queries/{query_id}",
        key="row_too_large",
    )


async def _stored_page(results: AsyncIterator[bytes], limit: int, query_id: str) -> bytes:
    """One stored page, refused past ``limit``: a page larger than the pages the runner builds
    holds a single row larger than them, which no tool result could carry anyway."""
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in results:
            size += len(chunk)
            if size > limit:
                raise _row_too_large(query_id, size)
            parts.append(chunk)
    finally:
        close = getattr(results, "aclose", None)  # the blob store's stream, released early
        if close is not None:
            await close()
    return b"".join(parts)


async def _rows_page(
    services: Services, caller: Caller, query_id: str, token: str | None, page_size: int, wait_ms: int
) -> Outcome:
    stored, offset = _position(query_id, token)
    view = await services.queries.settled(caller.principal, query_id, within_seconds=wait_ms / 1000)
    if view.status != "done":
        return _sql_result(view, [], token if view.status != "failed" else None)
    try:
        page = await services.queries.read(caller.principal, query_id, stored)
    except InvalidRequest as error:
        if error.key == "invalid_page_token":
            raise _bad_token() from None
        raise
    raw = b"[]"
    if page.results is not None:
        raw = await _stored_page(page.results, services.settings.query_page_bytes + _PAGE_SLACK, query_id)
    records: list[Any] = exact_json(raw)
    if offset and offset >= len(records):
        raise _bad_token()
    fields = page.view.fields or []
    rows: list[list[Any]] = []
    size = 0
    for record in records[offset : offset + page_size]:
        row = [record.get(name) for name in fields] if isinstance(record, dict) else list(record)
        row_size = len(json.dumps(row, ensure_ascii=False).encode())
        if row_size > SQL_PAGE_BYTES and not rows:
            raise _row_too_large(query_id, row_size)
        size += row_size
        if size > SQL_PAGE_BYTES:
            break
        rows.append(row)
    following = offset + len(rows)
    if following < len(records):
        next_token: str | None = _token(query_id, stored, following)
    else:
        next_token = None if page.next_token is None else _token(query_id, page.next_token, 0)
    return _sql_result(page.view, rows, next_token)


async def sql_query(services: Services, caller: Caller, args: schemas.SqlQuery) -> Outcome:
    connection = await reach.sql_connection(services, caller, args.connection)
    query = await services.queries.submit(caller.principal, connection.id, args.sql, read_only=True)
    return await _rows_page(services, caller, query.id, None, args.page_size, args.wait_ms)


async def sql_execute(services: Services, caller: Caller, args: schemas.SqlQuery) -> Outcome:
    connection = await reach.sql_connection(services, caller, args.connection)
    query = await services.queries.submit(caller.principal, connection.id, args.sql)
    return await _rows_page(services, caller, query.id, None, args.page_size, args.wait_ms)


async def sql_results(services: Services, caller: Caller, args: schemas.SqlResults) -> Outcome:
    return await _rows_page(services, caller, args.query_id, args.page_token, args.page_size, args.wait_ms)


# -- the catalogue -------------------------------------------------------------------------------

_HTTP_RESULT = (
    " The result has the upstream's status (an upstream 4xx/5xx is a result with ok false, not an "
    "error), its headers and the body: JSON parsed (integers beyond ±2^53-1 and long decimals as "
    "strings), text as text. A body longer than max_inline_bytes comes back as body_preview with "
    "truncated true and download.url, a short-lived URL (about 15 minutes) of the whole body; a "
    "binary body (images, PDFs, archives) always comes as download.url. Keyhole adds the "
    "connection's credential: never send it, and expect echoes of it to read [REDACTED]."
)
_SQL_RESULT = (
    " Waits up to wait_ms for the result, then returns the column names (fields), the first page of "
    "rows as arrays in the order of fields, row_count and next_page_token for the next page "
    "(keyhole_sql_results). A query still running after wait_ms comes back with status running "
    "and progress (rows and bytes so far, elapsed_seconds): call keyhole_sql_results with its "
    "query_id. Results expire (expires_at) and only this key "
    "may read them."
)

TOOLS: tuple[Tool[Any], ...] = (
    Tool(
        name="keyhole_list_connections",
        title="List connections",
        description="The connections this key may use: HTTP APIs (kind http) and databases (kind sql), "
        "each with its id, base URL, health and a one-line summary of how to call it. Pass an id to "
        "the other tools as `connection`. Secrets are never shown.",
        arguments=schemas.ListConnections,
        result=schemas.ConnectionList,
        hints=READS_KEYHOLE,
        run=list_connections,
    ),
    Tool(
        name="keyhole_describe_connection",
        title="Describe a connection",
        description="How to call one connection: for an HTTP API its base URL, the methods, the "
        "headers and query parameters Keyhole sets (never send them), inherited headers, the path "
        "rule, body and size limits, timeout and rate limits; for a database its SQL dialect, "
        "whether it is read-only and its limits.",
        arguments=schemas.DescribeConnection,
        result=schemas.ConnectionContract,
        hints=READS_KEYHOLE,
        run=describe_connection,
    ),
    Tool(
        name="keyhole_list_connection_types",
        title="List connection types",
        description="The kinds of connection this server knows (id, name, kind http or sql).",
        arguments=schemas.ListConnectionTypes,
        result=schemas.ConnectionTypeList,
        hints=READS_KEYHOLE,
        run=list_connection_types,
    ),
    Tool(
        name="keyhole_http_get",
        title="Read from an HTTP API",
        description="A GET (or HEAD) through a connection: the path is relative to the connection's "
        "base URL, and nothing on the upstream changes." + _HTTP_RESULT,
        arguments=schemas.HttpGet,
        result=schemas.HttpResult,
        hints=READS_UPSTREAM,
        run=http_call,
    ),
    Tool(
        name="keyhole_http_request",
        title="Call an HTTP API",
        description="Any method (GET, HEAD, POST, PUT, PATCH, DELETE) through a connection, with a "
        "JSON body (body) or a text body (body_text with content_type). It may change or delete data "
        "upstream; use keyhole_http_get to only read." + _HTTP_RESULT,
        arguments=schemas.HttpRequest,
        result=schemas.HttpResult,
        hints=CHANGES_UPSTREAM,
        run=http_call,
    ),
    Tool(
        name="keyhole_sql_query",
        title="Query a database (read-only)",
        description="Runs one SQL statement on a database connection in a read-only transaction, "
        "whatever the connection allows." + _SQL_RESULT,
        arguments=schemas.SqlQuery,
        result=schemas.SqlResult,
        hints=READS_UPSTREAM,
        run=sql_query,
        in_sessions=False,
    ),
    Tool(
        name="keyhole_sql_execute",
        title="Run SQL that may write",
        description="Runs one SQL statement on a database connection; it may write when the "
        "connection is not read-only (keyhole_describe_connection tells)." + _SQL_RESULT,
        arguments=schemas.SqlQuery,
        result=schemas.SqlResult,
        hints=CHANGES_UPSTREAM,
        run=sql_execute,
        in_sessions=False,
    ),
    Tool(
        name="keyhole_sql_results",
        title="Read query results",
        description="The next page of a query's rows (page_token: next_page_token of the last page), "
        "or the first page of a query that was still running, waiting up to wait_ms for it.",
        arguments=schemas.SqlResults,
        result=schemas.SqlResult,
        hints=READS_KEYHOLE,
        run=sql_results,
        in_sessions=False,
    ),
)
BY_NAME: dict[str, Tool[Any]] = {tool.name: tool for tool in TOOLS}
