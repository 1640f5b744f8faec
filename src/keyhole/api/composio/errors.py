"""The Composio error envelope and the one mapping of domain errors onto it.

``{"error": {"message", "code", "slug", "status", "request_id", "suggested_fix", "errors"}}`` with an
integer ``code`` and a string ``slug`` always (the 2.0 client only recognises the envelope then).
Statuses are limited to the ones Composio documents: 413 becomes 400, 410 becomes 404 (405, with
its ``Allow`` header, stays: a client is told which methods a path serves).
"""

from __future__ import annotations

from typing_extensions import TypedDict

from keyhole.api.errors import error_headers
from keyhole.api.responses import JSONResponse
from keyhole.errors import CallField, KeyholeError

_STATUS = {410: 404, 413: 400}

# Identifiers seen on hosted Composio keep their code; the rest use 10000 + HTTP status.
_CODES = {
    "ActionExecute_ConnectedAccountEntityIdMismatch": 1812,
    "ConnectedAccount_NotFound": 1803,
    "ConnectedAccount_NotFoundForUser": 1803,
    "ConnectedAccount_BadRequest": 600,
}
_VALIDATION_KEYS = frozenset({"validation_error", "malformed_json", "invalid_body"})
_FIXES = {
    400: "Fix the request as the message says, then send it again.",
    401: "Send a Keyhole API key in the x-api-key header (keyhole keys create).",
    403: "Use a key of the organization that owns the resource, or enable what the message names.",
    404: "Check the id: resources of another organization are not visible.",
    409: "Choose another value for the conflicting field.",
    422: "Fix the configuration fields listed in errors.",
    429: "Wait for the Retry-After seconds, then retry.",
    502: "The upstream API could not be reached; check its base URL and availability.",
    503: "Keyhole or a service it depends on is unavailable for now; retry after Retry-After.",
    504: "The upstream API did not answer in time; retry later or raise the connection's timeout_ms.",
}
_KEY_FIXES = {
    "secrets_unreadable": "An operator must give every Keyhole server and worker the same "
    "KEYHOLE_MASTER_KEYS.",
    "OriginMismatch": "Send a path relative to the connected account's base URL, or an absolute URL "
    "with its scheme and port, a host of the same registrable domain, and a path under its base path.",
    "MissingAuthContext": "Send connected_account_id (or custom_connection_data).",
    "ActionExecute_ConnectedAccountEntityIdMismatch": "Send the user_id that owns the connected "
    "account, or leave user_id out.",
    "locked_header": "Remove the credential header from parameters: Keyhole injects the account's own.",
    "locked_query": "Remove the credential query parameter (in any spelling) from the endpoint and "
    "parameters: Keyhole injects the account's own.",
    "secret_required_for_new_target": "Send the credential's value again to use it with the new base "
    "URL or endpoint; a stored credential only goes to the target it was saved with.",
    "origin_saturated": "The request was not sent: too many calls to this upstream are running; "
    "wait for the Retry-After seconds, then retry.",
    "egress_saturated": "The request was not sent: Keyhole is at its limit of upstream calls; wait for "
    "the Retry-After seconds, then retry.",
    "organization_concurrency_limited": "The request was not sent: send fewer proxy calls at once, "
    "or wait for the Retry-After seconds, then retry.",
}


class ComposioErrorBody(TypedDict):
    message: str
    code: int
    slug: str
    status: int
    request_id: str
    suggested_fix: str
    errors: list[str]


class ComposioErrorEnvelope(TypedDict):
    error: ComposioErrorBody


def slug_for(key: str) -> str:
    if key in _VALIDATION_KEYS:
        return "HTTP_BadRequest"
    if key[:1].isupper():
        return key
    return "".join(part.capitalize() for part in key.split("_")) or "InternalError"


def _errors(error: KeyholeError) -> list[str]:
    details = error.metadata.get("errors")
    if isinstance(details, list):
        shown = []
        for item in details[:20]:
            if isinstance(item, dict):
                field = str(item.get("field", "")).lstrip("/").replace("/", ".") or "body"
                shown.append(f"Error in payload.{field}: {item.get('message', 'Invalid input')}")
            else:
                shown.append(str(item))
        return shown
    return []


# How a Composio caller knows the parts of a proxy call (``endpoint``, ``parameters``, ``body``).
FIELD_NAMES = {
    CallField.METHOD: "method",
    CallField.PATH: "endpoint",
    CallField.QUERY: "query parameters",
    CallField.RAW_QUERY: "the endpoint's query",
    CallField.HEADERS: "header parameters",
    CallField.BODY: "body",
}


def envelope(error: KeyholeError, request_id: str | None) -> tuple[int, ComposioErrorEnvelope]:
    error.name_fields(FIELD_NAMES)
    status = _STATUS.get(error.status, error.status)
    code = _CODES.get(error.key, 10000 + status)
    body: ComposioErrorBody = {
        "message": error.message,
        "code": code,
        "slug": slug_for(error.key),
        "status": status,
        "request_id": request_id or "",
        "suggested_fix": _KEY_FIXES.get(error.key, _FIXES.get(status, "Retry later; quote request_id.")),
        "errors": _errors(error),
    }
    return status, {"error": body}


def error_response(error: KeyholeError, request_id: str | None = None) -> JSONResponse:
    status, body = envelope(error, request_id)
    return JSONResponse(body, status_code=status, headers=error_headers(error))
