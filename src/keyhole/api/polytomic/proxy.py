"""Polytomic routes of the connection proxy (spec sections 2.1 to 2.3).

Only wire translation lives here; every rule is enforced in ``keyhole.proxy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from keyhole.api.links import public_base_url
from keyhole.api.openapi import RATE_LIMITED, Answer, describe
from keyhole.api.polytomic import schemas
from keyhole.api.polytomic.calls import CURSOR_DESCRIPTION, CallPageAnswer, page_limit, page_response
from keyhole.api.polytomic.endpoint import endpoint
from keyhole.api.requests import parse, parse_json, read_body, read_json
from keyhole.api.responses import JSONResponse
from keyhole.audit.cursor import MAX_CURSOR_LENGTH
from keyhole.connections.schemas import ConnectionView
from keyhole.errors import InvalidRequest
from keyhole.proxy import contract
from keyhole.proxy.request import ProxyCall, encode_body, flatten_query
from keyhole.proxy.service import ProxyInfo
from keyhole.ratelimit import WINDOW_SECONDS
from keyhole.services import Services
from keyhole.tenancy.principal import Principal
from keyhole.timestamps import timestamp
from keyhole.vault.scrub import REDACTED

_TOP_LEVEL = frozenset({"request", "async"})
_REQUEST_KEYS = frozenset({"method", "path", "api", "headers", "query", "rawQuery", "body"})
MAX_CALLS_PAGE = 200


def _invalid(message: str, field: str) -> InvalidRequest:
    return InvalidRequest(message, key="invalid_proxy_request", metadata={"field": field})


@dataclass(frozen=True, slots=True)
class _Malformed:
    """A body that is not JSON: reported by the synchronous path, like any other bad call."""

    error: InvalidRequest


def _decoded(raw: bytes) -> Any:
    """The body parsed once; what it asks for (``async``) is read from this, never from its bytes."""
    try:
        return parse_json(raw)
    except InvalidRequest as error:
        return _Malformed(error)


def _proxy_call(payload: Any, envelope_bytes: int) -> ProxyCall:
    if isinstance(payload, _Malformed):
        raise payload.error
    if not isinstance(payload, dict):
        raise _invalid("the body must be a JSON object with a 'request' object", "body")
    unknown = set(payload) - _TOP_LEVEL
    if unknown:
        raise _invalid(f"unknown field {sorted(unknown)[0][:64]!r}", sorted(unknown)[0][:64])
    if payload.get("async") is not None and not isinstance(payload["async"], bool):  # 1 == True
        raise _invalid("async must be a boolean", "async")
    request = payload.get("request")
    if not isinstance(request, dict):
        raise _invalid("request is required and must be an object", "request")
    unknown = set(request) - _REQUEST_KEYS
    if unknown:
        name = sorted(unknown)[0][:64]
        raise _invalid(f"unknown field request.{name}", f"request.{name}")
    if request.get("api") is not None:
        raise _invalid("this connection exposes a single API; leave request.api out", "request.api")
    headers = request.get("headers") or {}
    if not isinstance(headers, dict):
        raise _invalid("request.headers must be an object of name → string", "request.headers")
    query = request.get("query")
    raw_query = request.get("rawQuery")
    if raw_query is not None and not isinstance(raw_query, str):
        raise _invalid("request.rawQuery must be a string", "request.rawQuery")
    body, content_type = encode_body(request.get("body"))
    return ProxyCall(
        # method and path are checked by the core contract, whatever type they arrive as
        method=request.get("method"),  # type: ignore[arg-type]
        path=request.get("path"),  # type: ignore[arg-type]
        headers=headers,
        query=None if query is None else flatten_query(query),
        raw_query=raw_query,
        body=body,
        content_type=content_type,
        envelope_bytes=envelope_bytes,
    )


@describe(
    summary="Call the connection's upstream API",
    description="Keyhole adds the connection's credential and answers with the upstream's answer "
    "(`data.status` is the upstream's status). With `async: true` a GET runs as a job: the answer's "
    "`data.status` is 202 and `jobUrl` is where to read the result (`GET /api/jobs/…`). "
    "A call refused by the connection's rate limit (429) carries `Retry-After` and the "
    "`X-RateLimit-*` headers of that limit.",
    tag="Proxy",
    body=schemas.ProxyCallBody,
    body_examples={
        "get": {"request": {"method": "GET", "path": "/v1/invoices", "query": {"limit": 10}}},
        "post": {
            "request": {
                "method": "POST",
                "path": "/v1/invoices",
                "headers": {"Idempotency-Key": "inv-2025-0001"},
                "body": {"customer": "cus_123", "amount": 4200},
            }
        },
        "async": {"request": {"method": "GET", "path": "/v1/exports/latest"}, "async": True},
    },
    answers={200: Answer(schemas.ProxyCallAnswer, description="The upstream's answer, or the accepted job")},
    errors=(409, 413, 422, 502, 504),
    error_headers=RATE_LIMITED,
)
@endpoint
async def execute(request: Request, services: Services, principal: Principal) -> Response:
    """One proxy call, synchronous or (``async: true``) as a job."""
    target = await services.proxy.target(principal, request.path_params["connection_id"])
    raw = await read_body(request, contract.envelope_limit(target.limits.max_request_body_bytes))
    payload = _decoded(raw)
    if isinstance(payload, dict) and payload.get("async") is True:
        submitted = await services.async_proxy.submit(
            principal, target, lambda: _proxy_call(payload, len(raw)), dialect="polytomic"
        )
        job = submitted.job
        base_url = public_base_url(request, services.settings)
        accepted: schemas.ProxyCallAnswer = {
            "data": {
                "status": 202,
                "jobId": job.id,
                "jobStatus": job.status.value,
                "jobUrl": f"{base_url}/api/jobs/{job.type}/{job.id}",
                "proxyCallId": submitted.call_id,
            }
        }
        return JSONResponse(accepted)
    result = await services.proxy.execute(
        principal, target, lambda: _proxy_call(payload, len(raw)), dialect="polytomic"
    )
    answered: schemas.ProxyCallAnswer = {
        "data": {
            "status": result.status,
            "body": result.body,
            "bodyEncoding": result.body_encoding,
            "contentType": result.content_type,
            "headers": result.headers,
            "latencyMs": result.latency_ms,
            "truncated": result.truncated,
            "proxyCallId": result.call_id,
        }
    }
    return JSONResponse(answered)


class RateLimit(TypedDict):
    perMinute: int | None  # null: no limit
    unlimited: bool


class RateLimits(TypedDict):
    connection: RateLimit
    organization: RateLimit
    windowSeconds: int
    sharedAcrossProcesses: bool


class LockedHeader(TypedDict):
    name: str
    value: str  # always the redaction placeholder
    redacted: bool


class InheritedBase(TypedDict):
    baseUrl: str
    lockedHeaders: list[LockedHeader]
    lockedQuery: dict[str, str]
    inheritedHeaders: dict[str, str]
    inheritedQuery: dict[str, str]


class RequestContract(TypedDict):
    allowedMethods: list[str]
    blockedRequestHeaders: list[str]
    blockedResponseHeaders: list[str]
    bodyTypes: list[str]
    queryModes: list[str]
    queryValueTypes: list[str]
    pathRule: str
    rawQueryRule: str
    maxRequestBodyBytes: int
    maxResponseBodyBytes: int
    rateLimitPerMinute: int | None
    organizationRateLimitPerMinute: int | None
    rateLimits: RateLimits
    timeoutMs: int
    scrubEchoedSecrets: bool
    maxAsyncBodyBytes: int
    bodyEncodings: list[str]


class ProxyStats(TypedDict):
    """The connection's calls of the last 24 hours."""

    callsLast24h: int
    proxyCallsLast24h: int
    proxy2xxLast24h: int
    proxy4xxLast24h: int
    proxy5xxLast24h: int
    lastProxyCallAt: str | None


class ProxyInfoData(TypedDict):
    connectionId: str
    parentConnectionId: str | None
    backendType: str
    inheritedBase: InheritedBase
    mergeRules: dict[str, str]
    requestContract: RequestContract
    stats: ProxyStats


class ProxyInfoEnvelope(TypedDict):
    data: ProxyInfoData


class ProxySettings(TypedDict):
    connectionId: str
    parentConnectionId: str | None
    backendType: str
    enabled: bool
    supported: bool  # whether the connection's type can be proxied at all


class ProxySettingsEnvelope(TypedDict):
    data: ProxySettings


class ConnectionCallsQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=MAX_CALLS_PAGE, description="Calls per page")
    cursor: str | None = Field(default=None, max_length=MAX_CURSOR_LENGTH, description=CURSOR_DESCRIPTION)


def _rate_limit(per_minute: int | None) -> RateLimit:
    return {"perMinute": per_minute, "unlimited": per_minute is None}


def _rate_limits(info: ProxyInfo) -> RateLimits:
    """The limits as the proxy enforces them (``null`` per minute: no limit)."""
    return {
        "connection": _rate_limit(info.target.limits.rate_limit_per_minute),
        "organization": _rate_limit(info.organization_rate_limit_per_minute),
        "windowSeconds": WINDOW_SECONDS,
        "sharedAcrossProcesses": info.shared_rate_limits,
    }


def _info(info: ProxyInfo) -> ProxyInfoData:
    target, stats = info.target, info.stats
    limits = target.limits
    return {
        "connectionId": target.connection_id,
        "parentConnectionId": target.parent_connection_id,
        "backendType": target.type_id,
        "inheritedBase": {
            "baseUrl": str(target.base_url),
            "lockedHeaders": [
                {"name": name, "value": REDACTED, "redacted": True} for name in target.credential_headers
            ],
            "lockedQuery": dict.fromkeys(target.credential_query, REDACTED),
            "inheritedHeaders": dict(target.inherited_headers),
            "inheritedQuery": dict(target.inherited_query),
        },
        "mergeRules": dict(contract.MERGE_RULES),
        "requestContract": {
            "allowedMethods": list(contract.ALLOWED_METHODS),
            "blockedRequestHeaders": [
                *contract.BLOCKED_REQUEST_HEADERS,
                *contract.BLOCKED_REQUEST_HEADER_PATTERNS,
                *target.credential_headers,
            ],
            "blockedResponseHeaders": list(contract.BLOCKED_RESPONSE_HEADERS),
            "bodyTypes": list(contract.BODY_TYPES),
            "queryModes": list(contract.QUERY_MODES),
            "queryValueTypes": list(contract.QUERY_VALUE_TYPES),
            "pathRule": contract.PATH_RULE,
            "rawQueryRule": contract.RAW_QUERY_RULE,
            "maxRequestBodyBytes": limits.max_request_body_bytes,
            "maxResponseBodyBytes": limits.max_response_body_bytes,
            "rateLimitPerMinute": limits.rate_limit_per_minute,
            "organizationRateLimitPerMinute": info.organization_rate_limit_per_minute,
            "rateLimits": _rate_limits(info),
            "timeoutMs": limits.timeout_ms,
            "scrubEchoedSecrets": limits.scrub_echoed_secrets,
            "maxAsyncBodyBytes": limits.max_async_body_bytes,
            "bodyEncodings": ["utf-8", "base64"],
        },
        "stats": {
            "callsLast24h": stats.calls,
            "proxyCallsLast24h": stats.calls,
            "proxy2xxLast24h": stats.ok_2xx,
            "proxy4xxLast24h": stats.client_4xx,
            "proxy5xxLast24h": stats.server_5xx,
            "lastProxyCallAt": timestamp(stats.last_call_at),
        },
    }


@describe(
    summary="The proxy contract of a connection",
    description="What a call may send and what it gets back, the limits that apply, and the calls "
    "of the last 24 hours. Credential values are never shown.",
    tag="Proxy",
    answers={200: Answer(ProxyInfoEnvelope)},
)
@endpoint
async def info(request: Request, services: Services, principal: Principal) -> Response:
    body: ProxyInfoEnvelope = {
        "data": _info(await services.proxy.info(principal, request.path_params["connection_id"]))
    }
    return JSONResponse(body)


def _settings(view: ConnectionView) -> ProxySettingsEnvelope:
    """A shared copy shows its parent's setting (stored there) and names the parent."""
    return {
        "data": {
            "connectionId": view.id,
            "parentConnectionId": view.parent_connection_id,
            "backendType": view.type.id,
            "enabled": view.proxy_enabled,
            "supported": view.type.http is not None,
        }
    }


@describe(
    summary="Whether the proxy is enabled for a connection",
    tag="Proxy",
    answers={200: Answer(ProxySettingsEnvelope)},
)
@endpoint
async def get_settings(request: Request, services: Services, principal: Principal) -> Response:
    view = await services.connections.get(principal, request.path_params["connection_id"])
    return JSONResponse(_settings(view))


@describe(
    summary="Enable or disable the proxy for a connection",
    description="A shared copy's setting is its parent's (403 here); a type the proxy does not "
    "support cannot be enabled (400 `proxy_not_supported`).",
    tag="Proxy",
    body=schemas.ProxySettingsBody,
    body_examples={"enable": {"enabled": True}},
    answers={200: Answer(ProxySettingsEnvelope)},
    errors=(413,),
)
@endpoint
async def put_settings(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.ProxySettingsBody, await read_json(request, services.settings.max_api_body_bytes))
    view = await services.connections.set_proxy_enabled(
        principal, request.path_params["connection_id"], body.enabled
    )
    return JSONResponse(_settings(view))


@describe(
    summary="The audited calls through a connection",
    description="Newest first; a shared copy's calls name its parent.",
    tag="Proxy",
    query=ConnectionCallsQuery,
    answers={200: Answer(CallPageAnswer)},
)
@endpoint
async def calls(request: Request, services: Services, principal: Principal) -> Response:
    connection_id = request.path_params["connection_id"]
    await services.connections.get(principal, connection_id)  # 404 for unknown or foreign
    limit = page_limit(request, default=50, maximum=MAX_CALLS_PAGE)
    page = await services.audit.calls(
        principal.organization_id, connection_id, limit=limit, cursor=request.query_params.get("cursor")
    )
    path = f"/api/connections/{connection_id}/proxy/calls"
    return page_response(page, path, {"limit": str(limit)})
