"""Composio wire shapes: strict request models (field names exactly as the clients send them).

Unknown fields are refused with a 400, except inside the free-form objects the spec leaves open
(``val``, ``credentials``, session options)."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from keyhole.connections.composio_mapping import AuthScheme
from keyhole.errors import InvalidRequest

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
    method: str  # the proxy contract's methods, checked by the core like every rule of a call
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
