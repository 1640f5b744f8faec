"""The Polytomic error envelope: ``{status, message, key, metadata}``, JSON always, with the
fields of a proxied call named as the dialect's request body names them."""

from __future__ import annotations

from keyhole.api import errors
from keyhole.api.responses import JSONResponse
from keyhole.errors import CallField, KeyholeError

FIELD_NAMES = {
    CallField.METHOD: "request.method",
    CallField.PATH: "request.path",
    CallField.QUERY: "request.query",
    CallField.RAW_QUERY: "request.rawQuery",
    CallField.HEADERS: "request.headers",
    CallField.BODY: "request.body",
}


def error_response(error: KeyholeError) -> JSONResponse:
    error.name_fields(FIELD_NAMES)
    return errors.error_response(error)
