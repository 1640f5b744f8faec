"""Composio wire shapes: strict request models (field names exactly as the clients send them)
and the response serializers. Unknown fields are refused with a 400, except inside the free-form
objects the spec leaves open (``val``, ``credentials``, session options)."""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from keyhole.authconfigs.service import AuthConfigView
from keyhole.connections.accounts import AccountView
from keyhole.connections.catalog import ConnectionType
from keyhole.connections.composio_mapping import AuthScheme, fixed_base_url, supported_schemes
from keyhole.errors import InvalidRequest

Method = Literal["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
_Id = Field(min_length=1, max_length=64)
_Slug = Field(min_length=1, max_length=64)
_UserId = Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")
_Alias = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class _Wire(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


# -- proxy ----------------------------------------------------------------------------------------


class Parameter(_Wire):
    name: str = Field(min_length=1, max_length=256)
    value: str = Field(max_length=8192)
    type: Literal["header", "query"] | None = None
    in_: Literal["header", "query"] | None = Field(default=None, alias="in")

    @property
    def location(self) -> str:
        """``type`` (the wire key), else its SDK alias ``in``, else ``header`` as the SDK defaults."""
        return self.type or self.in_ or "header"


class BinaryBodyBase64(_Wire):
    base64: str = Field(min_length=1)
    content_type: str | None = Field(default=None, max_length=256)


class BinaryBodyUrl(_Wire):
    url: str = Field(min_length=1, max_length=8192)
    content_type: str | None = Field(default=None, max_length=256)


class CustomConnectionData(_Wire):
    auth_scheme: AuthScheme = Field(alias="authScheme")
    toolkit_slug: str = Field(alias="toolkitSlug", min_length=1, max_length=64)
    val: dict[str, Any]


class ProxyFields(_Wire):
    endpoint: str = Field(min_length=1, max_length=8192)
    method: Method
    body: Any = None
    binary_body: BinaryBodyBase64 | BinaryBodyUrl | None = None
    parameters: list[Parameter] | None = Field(default=None, max_length=100)
    custom_connection_data: CustomConnectionData | None = None


class ProxyBody(ProxyFields):
    connected_account_id: str | None = Field(default=None, max_length=64)
    user_id: str | None = Field(default=None, max_length=255)


class SessionProxyBody(ProxyFields):
    toolkit_slug: str = _Slug


BINARY_BODY_MAX_BYTES = 4 * 1024 * 1024


def decode_base64(value: str) -> bytes:
    if len(value) > (BINARY_BODY_MAX_BYTES + 2) // 3 * 4 + 4:
        raise _binary_too_large()
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            "binary_body.base64 is not valid base64",
            key="validation_error",
            metadata={"errors": [{"field": "binary_body.base64", "message": "Invalid base64"}]},
        ) from None
    if len(decoded) > BINARY_BODY_MAX_BYTES:
        raise _binary_too_large()
    return decoded


def _binary_too_large() -> InvalidRequest:
    return InvalidRequest(
        f"binary_body is limited to {BINARY_BODY_MAX_BYTES} bytes (4 MB) once decoded",
        key="BinaryBodyTooLarge",
        metadata={"field": "binary_body"},
    )


# -- connected accounts ---------------------------------------------------------------------------


class IdRef(_Wire):
    id: str = _Id


class State(_Wire):
    auth_scheme: AuthScheme = Field(alias="authScheme")
    val: dict[str, Any]


class AccountConnection(_Wire):
    user_id: str | None = Field(default=None, min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")
    state: State | None = None
    data: State | None = None  # deprecated alias of state
    callback_url: str | None = Field(default=None, max_length=2048)
    redirect_uri: str | None = Field(default=None, max_length=2048)
    alias: str | None = _Alias
    experimental: dict[str, Any] | None = None
    deprecated_is_v1_rerouted: bool | None = None


class AccountCreateBody(_Wire):
    auth_config: IdRef
    connection: AccountConnection
    validate_credentials: bool | None = None


class PatchConnection(_Wire):
    state: State | None = None


class AccountPatchBody(_Wire):
    alias: str | None = _Alias
    connection: PatchConnection | None = None
    experimental: dict[str, Any] | None = None


class StatusBody(_Wire):
    enabled: bool


class RefreshBody(_Wire):
    redirect_url: str | None = Field(default=None, max_length=2048)
    validate_credentials: bool | None = None


class LinkBody(_Wire):
    auth_config_id: str = _Id
    user_id: str = _UserId
    callback_url: str | None = Field(default=None, max_length=2048)
    alias: str | None = _Alias
    connection_data: dict[str, Any] | None = None
    experimental: dict[str, Any] | None = None


# -- auth configs ---------------------------------------------------------------------------------


class SlugRef(_Wire):
    slug: str = _Slug


class _AuthConfigCommon(_Wire):
    credentials: dict[str, Any] | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    tool_access_config: dict[str, Any] | None = None
    is_enabled_for_tool_router: bool | None = None
    shared_credentials: dict[str, Any] | None = None
    restrict_to_following_tools: list[str] | None = None


class CustomAuth(_AuthConfigCommon):
    type: Literal["use_custom_auth"]
    auth_scheme: AuthScheme = Field(alias="authScheme")
    proxy_config: dict[str, Any] | None = None


class ManagedAuth(_AuthConfigCommon):
    type: Literal["use_composio_managed_auth"]


class AuthConfigCreateBody(_Wire):
    toolkit: SlugRef
    auth_config: CustomAuth | ManagedAuth | None = Field(default=None, discriminator="type")


class AuthConfigUpdateBody(_AuthConfigCommon):
    type: Literal["custom", "default"]
    proxy_config: dict[str, Any] | None = None
    scopes: str | list[str] | None = None
    user_scopes: str | list[str] | None = None


# -- sessions -------------------------------------------------------------------------------------


class ToolkitsEnable(_Wire):
    enable: list[str] = Field(max_length=1000)


class ToolkitsDisable(_Wire):
    disable: list[str] = Field(max_length=1000)


class SessionCreateBody(_Wire):
    user_id: str = _UserId
    toolkits: ToolkitsEnable | ToolkitsDisable | None = None
    auth_configs: dict[str, str] | None = None
    connected_accounts: dict[str, str | list[str]] | None = None
    manage_connections: dict[str, Any] | None = None
    multi_account: dict[str, Any] | None = None
    tools: dict[str, Any] | None = None
    tags: list[str] | dict[str, Any] | None = None
    preload: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    execute: dict[str, Any] | None = None
    workbench: dict[str, Any] | None = None
    experimental: dict[str, Any] | None = None
    instant: bool | dict[str, Any] | None = None
    proxy_execute: dict[str, Any] | None = None
    hooks: list[Any] | None = None


# -- query strings and paging ---------------------------------------------------------------------


def csv(request: Request, name: str) -> list[str]:
    """A comma-joined list parameter (the clients join arrays with commas); repeats are merged."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise _query_error(name, "must be true or false")


def _query_error(name: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"query parameter {name} {message}",
        key="validation_error",
        metadata={"errors": [{"field": name, "message": message}]},
    )


def paging(request: Request, *, default_limit: int = 20, max_limit: int = 1000) -> tuple[int, int]:
    """``(offset, limit)`` from ``limit`` and the opaque ``cursor`` (base64 of the offset)."""
    raw_limit = request.query_params.get("limit")
    limit = default_limit
    if raw_limit:
        try:
            limit = int(float(raw_limit))  # the 1.x clients type it as a float
        except ValueError:
            raise _query_error("limit", f"must be an integer from 1 to {max_limit}") from None
        if not 1 <= limit <= max_limit:
            raise _query_error("limit", f"must be an integer from 1 to {max_limit}")
    cursor = request.query_params.get("cursor")
    offset = 0
    if cursor:
        try:
            decoded = orjson.loads(base64.urlsafe_b64decode(cursor.encode() + b"==="))
            offset = int(decoded["o"])
        except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
            raise _query_error("cursor", "is not a cursor this server issued") from None
        if offset < 0:
            raise _query_error("cursor", "is not a cursor this server issued")
    return offset, limit


def page(items: list[dict[str, Any]], total: int, offset: int, limit: int) -> dict[str, Any]:
    following = offset + len(items)
    cursor = (
        base64.urlsafe_b64encode(orjson.dumps({"o": following})).decode().rstrip("=")
        if following < total
        else None
    )
    return {
        "items": items,
        "next_cursor": cursor,
        "total_pages": math.ceil(total / limit) if total else 0,
        "current_page": offset // limit + 1,
        "total_items": total,
    }


# -- responses ------------------------------------------------------------------------------------


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def account_state(view: AccountView) -> dict[str, Any]:
    return {"authScheme": view.auth_scheme, "val": {"status": view.status, **view.val}}


def account(view: AccountView, *, detail: bool) -> dict[str, Any]:
    state = account_state(view)
    shown: dict[str, Any] = {
        "id": view.id,
        "status": view.status,
        "status_reason": view.status_reason,
        "is_disabled": view.disabled,
        "user_id": view.user_id,
        "alias": view.alias,
        "toolkit": {"slug": view.toolkit},
        "auth_config": {
            "id": view.auth_config_id or "",
            "auth_scheme": view.auth_scheme,
            "is_composio_managed": False,
            "is_disabled": False,
        },
        "state": state,
        "data": dict(state["val"]),
        "created_at": timestamp(view.created_at),
        "updated_at": timestamp(view.updated_at),
        "test_request_endpoint": None,
        "experimental": {"account_type": "PRIVATE"},
    }
    if detail:
        shown["params"] = {}
    return shown


def auth_config(view: AuthConfigView) -> dict[str, Any]:
    return {
        "id": view.id,
        "uuid": view.id,
        "name": view.name,
        "type": "custom",
        "status": "ENABLED" if view.enabled else "DISABLED",
        "no_of_connections": view.connections,
        "toolkit": {"slug": view.toolkit_slug, "logo": ""},
        "tool_access_config": view.tool_access_config,
        "auth_scheme": view.auth_scheme,
        "credentials": view.credentials,
        "is_composio_managed": False,
        "is_enabled_for_tool_router": view.tool_router_enabled,
        "restrict_to_following_tools": [],
        "expected_input_fields": [],
        "created_at": timestamp(view.created_at),
        "created_by": view.created_by,
        "last_updated_at": timestamp(view.updated_at),
    }


def _meta(connection_type: ConnectionType) -> dict[str, Any]:
    return {
        "categories": [],
        "created_at": "1970-01-01T00:00:00Z",
        "updated_at": "1970-01-01T00:00:00Z",
        "description": f"{connection_type.name} through the Keyhole proxy",
        "logo": connection_type.logo_url,
        "tools_count": 0,
        "triggers_count": 0,
        "version": "1",
    }


def toolkit_item(connection_type: ConnectionType) -> dict[str, Any]:
    schemes = list(supported_schemes(connection_type))
    return {
        "slug": connection_type.id,
        "name": connection_type.name,
        "type": "native",
        "is_local_toolkit": True,
        "meta": _meta(connection_type),
        "deprecated": {"toolkitId": connection_type.id},
        "auth_schemes": schemes,
        "composio_managed_auth_schemes": [],
        "no_auth": schemes == ["NO_AUTH"],
        "base_url": fixed_base_url(connection_type),
    }


def toolkit_detail(connection_type: ConnectionType) -> dict[str, Any]:
    base = fixed_base_url(connection_type)
    meta = {**_meta(connection_type), "available_versions": ["1"]}
    return {
        "slug": connection_type.id,
        "name": connection_type.name,
        "type": "native",
        "enabled": True,
        "is_local_toolkit": True,
        "meta": meta,
        "composio_managed_auth": [],
        "composio_managed_auth_schemes": [],
        "deprecated": {"toolkitId": connection_type.id, "rawProxyInfoByAuthSchemes": []},
        "auth_config_details": [
            {
                "mode": scheme,
                "name": scheme.replace("_", " ").title(),
                "fields": {
                    "auth_config_creation": {"required": [], "optional": []},
                    "connected_account_initiation": {"required": [], "optional": []},
                },
                **({"proxy": {"base_url": base}} if base else {}),
            }
            for scheme in supported_schemes(connection_type)
        ],
        "base_url": base,
    }
