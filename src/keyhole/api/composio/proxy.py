"""``POST /tools/execute/proxy`` and the shared translation of a Composio proxy call.

Only wire translation lives here: the endpoint/origin rule, the path contract, header locking,
caps, limits, scrubbing and audit are the core's (``keyhole.proxy``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from keyhole.api.composio import schemas
from keyhole.api.composio.endpoint import endpoint
from keyhole.api.requests import parse, read_body
from keyhole.api.responses import JSONResponse
from keyhole.connections.composio_mapping import inline_target
from keyhole.connections.target import HttpTarget
from keyhole.errors import InvalidRequest, KeyholeError, NotFound
from keyhole.proxy.binary import BlobSink
from keyhole.proxy.fetch import fetch_bytes
from keyhole.proxy.origin import split_endpoint
from keyhole.proxy.request import ProxyCall
from keyhole.proxy.service import ProxyResult
from keyhole.services import Services
from keyhole.tenancy.principal import Principal

# 4 MB of binary as base64 plus a JSON body up to the largest connection cap (10 MiB), with room.
MAX_PROXY_REQUEST_BYTES = 16 * 1024 * 1024
_SAFE_METHODS = ("GET", "HEAD")
_JSON_TYPES = ("application/json", "+json")
# Core messages name Polytomic's fields; a Composio caller knows these names instead.
_FIELD_NAMES = (
    ("request.path", "endpoint"),
    ("request.rawQuery", "the endpoint's query"),
    ("request.headers", "header parameters"),
    ("request.query", "query parameters"),
    ("request.body", "body"),
    ("request.method", "method"),
    ("in query or rawQuery", "in query parameters"),
)


async def read_payload(request: Request) -> Any:
    raw = await read_body(request, MAX_PROXY_REQUEST_BYTES)
    try:
        return orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not valid JSON ({exc.msg})", key="malformed_json"
        ) from None


def _split_parameters(
    parameters: list[schemas.Parameter] | None,
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    headers: dict[str, str] = {}
    query: list[tuple[str, str]] = []
    for parameter in parameters or ():
        if parameter.type is not None and parameter.in_ is not None and parameter.type != parameter.in_:
            raise InvalidRequest(
                f"parameter {parameter.name[:64]} has type {parameter.type} but in {parameter.in_}",
                key="validation_error",
                metadata={"errors": [{"field": "parameters", "message": "type and in disagree"}]},
            )
        if parameter.location == "query":
            query.append((parameter.name, parameter.value))
        else:
            existing = next((name for name in headers if name.lower() == parameter.name.lower()), None)
            if existing is not None:
                headers[existing] = f"{headers[existing]}, {parameter.value}"
            else:
                headers[parameter.name] = parameter.value
    return headers, query


async def _upload(services: Services, body: schemas.ProxyFields) -> tuple[bytes | None, str | None]:
    if body.binary_body is not None and "body" in body.model_fields_set and body.body is not None:
        raise InvalidRequest(
            "send either body (JSON) or binary_body, not both",
            key="validation_error",
            metadata={"errors": [{"field": "binary_body", "message": "body and binary_body are exclusive"}]},
        )
    binary = body.binary_body
    if isinstance(binary, schemas.BinaryBodyBase64):
        return schemas.decode_base64(binary.base64), binary.content_type or "application/octet-stream"
    if isinstance(binary, schemas.BinaryBodyUrl):
        data, fetched_type = await fetch_bytes(
            services.egress, binary.url, cap=schemas.BINARY_BODY_MAX_BYTES, timeout_ms=30_000
        )
        return data, binary.content_type or fetched_type or "application/octet-stream"
    if body.body is None:
        return None, None
    return orjson.dumps(body.body), "application/json"


def _call(body: schemas.ProxyFields, content: bytes | None, content_type: str | None) -> ProxyCall:
    resolved = split_endpoint(body.endpoint)
    headers, query = _split_parameters(body.parameters)
    raw_query = "&".join(part for part in (resolved.raw_query, urlencode(query)) if part)
    return ProxyCall(
        method=body.method,
        path=resolved.path,
        headers=headers,
        raw_query=raw_query or None,
        body=content,
        content_type=content_type,
        origin=resolved.origin,
    )


def _translated(error: KeyholeError) -> KeyholeError:
    for polytomic, composio in _FIELD_NAMES:
        error.message = error.message.replace(polytomic, composio)
    return error


def inline(services: Services, principal: Principal, data: schemas.CustomConnectionData) -> HttpTarget:
    try:
        connection_type = services.catalog.get(data.toolkit_slug)
    except NotFound:
        raise InvalidRequest(
            f"unknown toolkit {data.toolkit_slug[:64]!r} in custom_connection_data.toolkitSlug",
            key="Toolkit_NotFound",
            metadata={"field": "custom_connection_data.toolkitSlug"},
        ) from None
    return inline_target(connection_type, principal.organization_id, data.auth_scheme, data.val)


def _data(result: ProxyResult) -> Any:
    if result.binary is not None:
        return {}  # as hosted Composio: the body is behind binary_data.url
    if not result.body:
        return None
    if result.body_encoding == "base64":
        return result.body  # undecodable bytes under a text content type
    if any(marker in result.content_type.lower() for marker in _JSON_TYPES):
        try:
            return orjson.loads(result.body)
        except orjson.JSONDecodeError:
            return result.body
    return result.body


def shaped(result: ProxyResult) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "status": result.status,
        "data": _data(result),
        "headers": {name.lower(): value for name, value in result.headers.items()},
    }
    if result.binary is not None:  # the key is absent for non-file answers
        shown["binary_data"] = {
            "url": result.binary.url,
            "content_type": result.binary.content_type,
            "size": result.binary.size,
            "expires_at": schemas.timestamp(result.binary.expires_at),
        }
    return shown


def _sink(request: Request, services: Services) -> BlobSink:
    base_url = (services.settings.public_url or str(request.base_url)).rstrip("/")
    return BlobSink(services.blobs, base_url, ttl_seconds=services.settings.blob_url_ttl_seconds)


async def run(
    request: Request, services: Services, principal: Principal, target: HttpTarget, body: schemas.ProxyFields
) -> dict[str, Any]:
    """Execute one Composio proxy call on ``target`` through the core proxy service; a binary
    answer streams into the blob store and comes back as ``binary_data``."""
    try:
        content, content_type = await _upload(services, body)
        result = await services.proxy.execute(
            principal,
            target,
            lambda: _call(body, content, content_type),
            dialect="composio",
            binary_sink=_sink(request, services),
        )
    except KeyholeError as error:
        if error.status >= 500 and body.method not in _SAFE_METHODS:
            error.headers["x-should-retry"] = "false"  # a replay could repeat an upstream write
        raise _translated(error) from None
    return shaped(result)


@endpoint
async def execute(request: Request, services: Services, principal: Principal) -> Response:
    body = parse(schemas.ProxyBody, await read_payload(request))
    if body.connected_account_id is not None and body.custom_connection_data is not None:
        raise InvalidRequest(
            "send either connected_account_id or custom_connection_data, not both",
            key="validation_error",
            metadata={
                "errors": [
                    {"field": "custom_connection_data", "message": "exclusive with connected_account_id"}
                ]
            },
        )
    if body.connected_account_id is not None:
        target = await services.accounts.target(principal, body.connected_account_id, user_id=body.user_id)
    elif body.custom_connection_data is not None:
        target = inline(services, principal, body.custom_connection_data)
    else:
        raise InvalidRequest(
            "no auth context: send connected_account_id (or custom_connection_data) to say whose "
            "credential the call uses",
            key="MissingAuthContext",
            metadata={"field": "connected_account_id"},
        )
    return JSONResponse(await run(request, services, principal, target, body))
