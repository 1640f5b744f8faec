"""Domain errors raised by core services; each dialect maps them to its own envelope.

A message must say what was wrong and what to do, and must never contain a secret.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar


class CallField(enum.Enum):
    """A part of a proxied call. Each dialect spells these its own way (Polytomic's
    ``request.rawQuery`` is Composio's "the endpoint's query"), so core errors about them name
    them through a ``FieldReference`` and the dialect renders the names."""

    METHOD = "method"
    PATH = "path"
    QUERY = "query"
    RAW_QUERY = "raw query"
    HEADERS = "headers"
    BODY = "body"


CORE_FIELD_NAMES: Mapping[CallField, str] = {field: field.value for field in CallField}


@dataclass(frozen=True, slots=True)
class FieldReference:
    """Which call field an error is about, and its message with the field names left open."""

    field: CallField
    message: tuple[str | CallField, ...]
    member: str | None = None  # a header or parameter under ``field``: ``request.headers.X-Key``

    def render(self, names: Mapping[CallField, str]) -> str:
        return "".join(names[part] if isinstance(part, CallField) else part for part in self.message)

    def path(self, names: Mapping[CallField, str]) -> str:
        return names[self.field] if self.member is None else f"{names[self.field]}.{self.member}"


class KeyholeError(Exception):
    """Base of every domain error. ``key`` is a stable machine-readable code."""

    status: ClassVar[int] = 500
    default_key: ClassVar[str] = "internal_error"
    about: FieldReference | None = None

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        metadata: dict[str, Any] | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.key = key or self.default_key
        self.metadata = metadata or {}
        self.retry_after = retry_after
        self.headers = headers or {}

    def name_fields(self, names: Mapping[CallField, str]) -> None:
        """Spell the call field this error is about (message and ``metadata.field``) as a
        dialect names it; errors about no call field are left as they are."""
        if self.about is not None:
            self.message = self.about.render(names)
            self.metadata["field"] = self.about.path(names)


_E = TypeVar("_E", bound="KeyholeError")


def call_error(
    kind: type[_E],
    field: CallField,
    *message: str | CallField,
    key: str,
    member: str | None = None,
    **metadata: Any,
) -> _E:
    """An error about one field of a proxied call, in core names until a dialect renames it."""
    about = FieldReference(field, message, member)
    error = kind(
        about.render(CORE_FIELD_NAMES), key=key, metadata={"field": about.path(CORE_FIELD_NAMES), **metadata}
    )
    error.about = about
    return error


def body_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body exceeds {limit} bytes", key="body_too_large")


def internal_error(request_id: str | None) -> KeyholeError:
    """What a caller sees of an unexpected failure: nothing but the id to quote."""
    return KeyholeError(
        "internal error; quote the X-Request-Id header when reporting it",
        metadata={"request_id": request_id},
    )


def describe_failure(error: BaseException) -> str:
    """One line naming an infrastructure failure (the driver's own error when a library wrapped
    it), for operators; never sent to API callers."""
    reason = getattr(error, "orig", None) or error
    first_line = next(iter(str(reason).splitlines()), "")
    return f"{type(reason).__name__}: {first_line}" if first_line else type(reason).__name__


class InvalidRequest(KeyholeError):
    status = 400
    default_key = "invalid_request"


class Unauthenticated(KeyholeError):
    status = 401
    default_key = "unauthorized"


class Forbidden(KeyholeError):
    status = 403
    default_key = "forbidden"


class EgressDenied(Forbidden):
    default_key = "egress_denied"


class NotFound(KeyholeError):
    status = 404
    default_key = "not_found"


class Conflict(KeyholeError):
    status = 409
    default_key = "conflict"


class Gone(KeyholeError):
    status = 410
    default_key = "gone"


class PayloadTooLarge(KeyholeError):
    status = 413
    default_key = "payload_too_large"


class UnsupportedMediaType(KeyholeError):
    status = 415
    default_key = "unsupported_media_type"


class Unprocessable(KeyholeError):
    status = 422
    default_key = "unprocessable"


class RateLimited(KeyholeError):
    status = 429
    default_key = "rate_limited"


class UpstreamUnreachable(KeyholeError):
    status = 502
    default_key = "upstream_unreachable"


class SecretsUnreadable(KeyholeError):
    """A stored secret that this process's master keys cannot open: a deployment fault, not the
    caller's, and never worked around by sending the call without its credential."""

    status = 503
    default_key = "secrets_unreadable"


class EgressSaturated(KeyholeError):
    """Too many upstream calls already run and wait (for one origin, or in all): the request was
    not sent, and may be sent again after ``Retry-After``."""

    status = 503
    default_key = "egress_saturated"


class UpstreamTimeout(KeyholeError):
    status = 504
    default_key = "upstream_timeout"


class MethodNotAllowed(KeyholeError):
    status = 405
    default_key = "method_not_allowed"
