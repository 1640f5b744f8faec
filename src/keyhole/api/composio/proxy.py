"""``POST /tools/execute/proxy`` and the shared translation of a Composio proxy call.

Only wire translation lives here: the endpoint/origin rule, the path contract, header locking,
caps, limits, scrubbing and audit are the core's (``keyhole.proxy``); whose credential a call
uses is the accounts' and sessions' (``keyhole.accounts``, ``keyhole.toolrouter``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from keyhole.accounts.service import InlineCredentials
from keyhole.api.composio import schemas
from keyhole.api.composio.endpoint import endpoint
from keyhole.api.composio.renderers import ProxyAnswer
from keyhole.api.links import public_base_url
from keyhole.api.openapi import RATE_LIMITED, Answer, describe
from keyhole.api.requests import Model, parse, parse_json, read_body
from keyhole.api.responses import JSONResponse
from keyhole.connections.target import HttpTarget
from keyhole.errors import InvalidRequest
from keyhole.proxy import contract
from keyhole.proxy.binary import BlobSink
from keyhole.proxy.fetch import fetch_bytes
from keyhole.proxy.origin import split_endpoint
from keyhole.proxy.request import ProxyCall
from keyhole.proxy.response import is_json
from keyhole.proxy.service import ProxyResult
from keyhole.services import Services
from keyhole.tenancy.principal import Principal
from keyhole.timestamps import timestamp

# Statuses a call may answer besides the section's: an inline credential whose configuration is
# invalid, an upstream that cannot be reached or does not answer in time.
ERRORS = (422, 502, 504)
_EXAMPLES: dict[str, Any] = {
    "get": {
        "connected_account_id": "0b6f3c1e-5d2a-4e8f-9a7b-3c4d5e6f7a8b",
        "endpoint": "/v1/customers?limit=10",
        "method": "GET",
        "parameters": [{"name": "Stripe-Version", "value": "2024-06-20", "type": "header"}],
    },
    "post_json": {
        "connected_account_id": "0b6f3c1e-5d2a-4e8f-9a7b-3c4d5e6f7a8b",
        "endpoint": "/v1/customers",
        "method": "POST",
        "body": {"email": "ada@example.com", "name": "Ada Lovelace"},
    },
}


async def read_call(request: Request, model: type[Model]) -> tuple[Model, int]:
    """The call's body, read before its account is known (the account is named inside it), so
    up to the contract's ceiling; the connection's own bound is checked by the core."""
    raw = await read_body(request, contract.MAX_ENVELOPE_BYTES)
    return parse(model, parse_json(raw)), len(raw)


def inline_credentials(body: schemas.ProxyFields) -> InlineCredentials | None:
    data = body.custom_connection_data
    if data is None:
        return None
    return InlineCredentials(toolkit=data.toolkit_slug, auth_scheme=data.auth_scheme, val=data.val)


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


def _call(
    body: schemas.ProxyFields, content: bytes | None, content_type: str | None, envelope_bytes: int
) -> ProxyCall:
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
        envelope_bytes=envelope_bytes,
    )


def _data(result: ProxyResult) -> Any:
    if result.binary is not None:
        return {}  # as hosted Composio: the body is behind binary_data.url
    if not result.body:
        return None
    if result.body_encoding == "base64":
        return result.body  # undecodable bytes under a text content type
    if is_json(result.content_type):
        try:
            return orjson.loads(result.body)
        except orjson.JSONDecodeError:
            return result.body
    return result.body


def shaped(result: ProxyResult) -> ProxyAnswer:
    shown: ProxyAnswer = {
        "status": result.status,
        "data": _data(result),
        "headers": {name.lower(): value for name, value in result.headers.items()},
    }
    if result.binary is not None:  # the key is absent for non-file answers
        shown["binary_data"] = {
            "url": result.binary.url,
            "content_type": result.binary.content_type,
            "size": result.binary.size,
            "expires_at": timestamp(result.binary.expires_at),
        }
    return shown


async def run(
    request: Request,
    services: Services,
    principal: Principal,
    target: HttpTarget,
    body: schemas.ProxyFields,
    envelope_bytes: int,
) -> ProxyAnswer:
    """Execute one Composio proxy call on ``target`` through the core proxy service; a binary
    answer streams into the blob store and comes back as ``binary_data``."""
    content, content_type = await _upload(services, body)
    sink = BlobSink(
        services.blobs,
        lambda: public_base_url(request, services.settings),
        ttl_seconds=services.settings.blob_url_ttl_seconds,
    )
    result = await services.proxy.execute(
        principal,
        target,
        lambda: _call(body, content, content_type, envelope_bytes),
        dialect="composio",
        binary_sink=sink,
    )
    return shaped(result)


@describe(
    summary="Call the upstream API of a connected account",
    description="endpoint is a path under the account's base URL (or an absolute URL of the same "
    "origin); Keyhole adds the account's credential. The upstream's status and body come back in "
    "the answer, whatever they are.",
    tag="Tools",
    body=schemas.ProxyBody,
    body_examples=_EXAMPLES,
    answers={200: Answer(ProxyAnswer, description="The upstream's answer")},
    errors=ERRORS,
    error_headers=RATE_LIMITED,
)
@endpoint
async def execute(request: Request, services: Services, principal: Principal) -> Response:
    body, size = await read_call(request, schemas.ProxyBody)
    target = await services.accounts.proxy_target(
        principal,
        account_id=body.connected_account_id,
        user_id=body.user_id,
        inline=inline_credentials(body),
    )
    return JSONResponse(await run(request, services, principal, target, body, size))
