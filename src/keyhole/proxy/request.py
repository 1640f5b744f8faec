"""The request contract, enforced once for every dialect: path, query, headers and body rules.

Everything here is pure and raises ``InvalidRequest``/``PayloadTooLarge`` with a message that
names the offending field, so a caller knows what to fix without reading the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode

import orjson
import yarl

from keyhole.connections.target import HttpTarget
from keyhole.errors import CallField, InvalidRequest, PayloadTooLarge, body_too_large, call_error
from keyhole.http_names import header_name_key, is_blocked_key, query_name_key
from keyhole.http_paths import check_path
from keyhole.proxy import contract
from keyhole.proxy.origin import check_origin

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")  # fullmatch: '$' would allow a final \n
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Some servers (Rack before 3, Python before 3.9.2) split a query on ';' as well as '&'.
_QUERY_SEPARATOR = re.compile(r"[&;]")


@dataclass(frozen=True, slots=True)
class ProxyCall:
    """A caller's request, already decoded from its dialect's wire shape."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]] | None = None
    raw_query: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    # An absolute endpoint's scheme://host[:port]; replaces the base URL once ``check_origin`` allows it.
    origin: yarl.URL | None = None
    envelope_bytes: int = 0  # the size of the dialect's whole request body that carried this call


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url_path: str  # percent-encoded path as sent, for the audit log (no query)
    encoded_query: str
    headers: dict[str, str]
    body: bytes | None
    origin: yarl.URL | None = None


_PATH = CallField.PATH
_QUERY = CallField.QUERY
_RAW_QUERY = CallField.RAW_QUERY
_HEADERS = CallField.HEADERS
_BODY = CallField.BODY


def _invalid(field: CallField, *message: str | CallField, member: str | None = None) -> InvalidRequest:
    return call_error(InvalidRequest, field, *message, key="invalid_proxy_request", member=member)


def check_method(method: object) -> str:
    if not isinstance(method, str) or method.upper() not in contract.ALLOWED_METHODS:
        raise _invalid(
            CallField.METHOD, CallField.METHOD, f" must be one of {', '.join(contract.ALLOWED_METHODS)}"
        )
    return method.upper()


def flatten_query(query: object) -> list[tuple[str, str]]:
    """``{"a": 1, "b": [true, "x"]}`` → ``[("a", "1"), ("b", "true"), ("b", "x")]``."""
    if not isinstance(query, dict):
        raise _invalid(_QUERY, _QUERY, " must be an object of name → value")
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if item is None:
                continue
            if isinstance(item, bool):
                pairs.append((name, "true" if item else "false"))
            elif isinstance(item, str | int | float):
                pairs.append((name, str(item)))
            else:
                raise _invalid(
                    _QUERY,
                    _QUERY,
                    f".{name[:64]} must be a string, number, boolean or an array of them",
                    member=name[:64],
                )
    return pairs


def encode_body(body: Any) -> tuple[bytes | None, str | None]:
    """JSON bodies: objects and arrays as JSON, strings as is, null as no body."""
    if body is None:
        return None, None
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    if isinstance(body, dict | list):
        return orjson.dumps(body), "application/json"
    raise _invalid(_BODY, _BODY, " must be an object, an array, a string or null")


def _check_headers(target: HttpTarget, headers: Mapping[str, str]) -> dict[str, str]:
    if len(headers) > contract.MAX_HEADERS:
        raise _invalid(_HEADERS, f"at most {contract.MAX_HEADERS} request headers are allowed")
    locked = target.locked_header_keys
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise _invalid(_HEADERS, f"header name {name[:64]!r} is not a valid HTTP token")
        if not isinstance(value, str):
            raise _invalid(_HEADERS, f"header {name} must have a string value", member=name)
        if len(value) > contract.MAX_HEADER_VALUE_LENGTH or _CONTROL.search(value.replace("\t", " ")):
            raise _invalid(
                _HEADERS,
                f"header {name} has a value that is too long or contains CR, LF, NUL or another control "
                "character",
                member=name,
            )
        key = header_name_key(name)
        if key in locked:
            raise InvalidRequest(
                f"header {_as_read(name, locked[key])} carries the connection's credential and cannot "
                "be set by the caller",
                key="locked_header",
                metadata={"field": f"request.headers.{name}", "header": name},
            )
        if is_blocked_key(key):
            raise InvalidRequest(
                f"header {name} is blocked by the proxy contract (see blockedRequestHeaders in proxy info)",
                key="blocked_header",
                metadata={"field": f"request.headers.{name}", "header": name},
            )
        checked[name] = value
    return checked


def _as_read(name: str, locked: str) -> str:
    if name.lower() == locked.lower():
        return name
    return f"{name[:64]!r} (which an upstream may read as {locked})"


def _check_query_name(locked: Mapping[str, str], name: str) -> None:
    locked_name = locked.get(query_name_key(name))
    if locked_name is not None:
        raise call_error(
            InvalidRequest,
            _QUERY,
            f"query parameter {_as_read(name, locked_name)} carries the connection's credential and "
            "cannot be set by the caller",
            key="locked_query",
            parameter=name[:64],
        )


def _query(target: HttpTarget, call: ProxyCall) -> str:
    if call.query is not None and call.raw_query is not None:
        raise _invalid(_RAW_QUERY, "send either ", _QUERY, " or ", _RAW_QUERY, ", not both")
    locked = target.locked_query_keys
    inherited = dict(target.inherited_query)
    caller = ""
    if call.query is not None:
        for name, _ in call.query:
            if locked:
                _check_query_name(locked, name)
            inherited.pop(name, None)
        caller = urlencode(list(call.query))
    elif call.raw_query:
        raw = call.raw_query
        if (
            raw.startswith("?")
            or "#" in raw
            or " " in raw
            or _CONTROL.search(raw)
            or _BAD_PERCENT.search(raw)
        ):
            raise _invalid(_RAW_QUERY, _RAW_QUERY, f" breaks the rule: {contract.RAW_QUERY_RULE}")
        if locked:
            for part in _QUERY_SEPARATOR.split(raw):
                _check_query_name(locked, unquote_plus(part.partition("=")[0]))
        caller = raw
    parts = [
        urlencode(list(inherited.items())) if inherited else "",
        caller,
        urlencode(list(target.credential_query.items())) if target.credential_query else "",
    ]
    return "&".join(part for part in parts if part)


def build_upstream(target: HttpTarget, call: ProxyCall) -> UpstreamRequest:
    """The upstream request for ``call`` under every rule of the contract, or the refusal."""
    method = check_method(call.method)
    path = check_path(call.path)
    if call.origin is not None:
        check_origin(target.base_url, call.origin, path)
    headers = _check_headers(target, call.headers)
    if call.body is not None and len(call.body) > target.limits.max_request_body_bytes:
        raise call_error(
            PayloadTooLarge,
            _BODY,
            _BODY,
            f" is {len(call.body)} bytes; this connection accepts at most "
            f"{target.limits.max_request_body_bytes} (maxRequestBodyBytes)",
            key="request_body_too_large",
        )
    envelope_limit = contract.envelope_limit(target.limits.max_request_body_bytes)
    if call.envelope_bytes > envelope_limit:
        raise body_too_large(envelope_limit)
    merged = dict(target.inherited_headers)
    lowered = {name.lower(): name for name in merged}
    for name, value in headers.items():
        existing = lowered.get(name.lower())
        if existing is not None:
            del merged[existing]
        merged[name] = value
    if call.body is not None and call.content_type and "content-type" not in {n.lower() for n in merged}:
        merged["Content-Type"] = call.content_type
    merged.update(target.credential_headers)  # last, so nothing the caller sent can replace it
    return UpstreamRequest(method, path, _query(target, call), merged, call.body, call.origin)
