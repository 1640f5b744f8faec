"""Reading request bodies and parameters safely: size caps, JSON shape, typed parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from keyhole.errors import InvalidRequest, body_too_large

Model = TypeVar("Model", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused as soon as it exceeds ``limit`` bytes (never buffered past it)."""
    return await read_limited(request.stream(), request.headers.get("content-length"), limit)


async def read_limited(chunks: AsyncIterator[bytes], declared_length: str | None, limit: int) -> bytes:
    """Join ``chunks``, refusing a declared or actual length over ``limit`` before buffering it."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise body_too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def read_json(request: Request, limit: int, *, empty: Any = None) -> Any:
    return parse_json(await read_body(request, limit), empty=empty)


def parse_json(body: bytes, *, empty: Any = None) -> Any:
    """The body as JSON (``empty`` for a blank one), or the dialect-neutral ``malformed_json``."""
    if not body.strip():
        return empty
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not valid JSON ({exc.msg} at position {exc.pos})", key="malformed_json"
        ) from None


def parse(model: type[Model], payload: Any) -> Model:
    if not isinstance(payload, dict):
        raise InvalidRequest("the request body must be a JSON object", key="invalid_body")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(
            "invalid request: " + "; ".join(_describe(error) for error in exc.errors()[:10]),
            key="validation_error",
            metadata={"errors": [_field_error(error) for error in exc.errors()]},
        ) from None


def _location(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"]) or "body"


def _describe(error: Any) -> str:
    return f"{_location(error)}: {_message(error)}"


def _message(error: Any) -> str:
    # pydantic's messages never contain the input value; the input itself is left out on purpose.
    return str(error["msg"])


def _field_error(error: Any) -> dict[str, str]:
    return {"field": _location(error), "message": _message(error)}


def query_flag(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter: ``true``/``1`` or ``false``/``0`` (any case); absent or empty is
    ``default``."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    message = "must be true or false"
    raise InvalidRequest(
        f"query parameter {name} {message}",
        key="validation_error",
        metadata={"errors": [{"field": name, "message": message}]},
    )
