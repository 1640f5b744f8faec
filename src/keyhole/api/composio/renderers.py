"""Composio response bodies: the typed shape of every answer (the OpenAPI documents are generated
from them) and the renderers of connected accounts, auth configs and toolkits."""

from __future__ import annotations

from typing import Any, Generic, Literal, NotRequired, TypeVar

from typing_extensions import TypedDict

from keyhole.accounts.service import AccountView
from keyhole.authconfigs.service import AuthConfigView
from keyhole.connections.catalog import ConnectionType
from keyhole.connections.composio_mapping import fixed_base_url, supported_schemes
from keyhole.timestamps import timestamp

Item = TypeVar("Item")


class Page(TypedDict, Generic[Item]):
    items: list[Item]
    next_cursor: str | None  # None on the last page
    total_pages: int
    current_page: int
    total_items: int


class Success(TypedDict):
    success: bool


# -- proxy ----------------------------------------------------------------------------------------


class BinaryData(TypedDict):
    url: str  # fetches the body without any other credential, until expires_at
    content_type: str
    size: int
    expires_at: str


class ProxyAnswer(TypedDict):
    status: int  # the upstream's status
    data: Any  # the upstream's body: JSON when it says so, else text; {} when in binary_data
    headers: dict[str, str]
    binary_data: NotRequired[BinaryData]  # a file answer, stored for a while


class SessionProxyAnswer(ProxyAnswer):
    result_type: Literal["completed"]


# -- tool router sessions -------------------------------------------------------------------------


class SessionMcp(TypedDict):
    type: Literal["http"]
    url: str


class ToolkitsEnabled(TypedDict):
    enabled: list[str]


class ToolkitsDisabled(TypedDict):
    disabled: list[str]


class SessionConfig(TypedDict):
    """The session's options as sent, in the response spellings (``enabled`` for ``enable``)."""

    user_id: str
    execute: dict[str, Any]
    preload: dict[str, Any]
    search: dict[str, Any]
    auth_configs: dict[str, str]  # toolkit slug -> auth config id
    # toolkit slug -> account id on /api/v3, -> account ids on /api/v3.1
    connected_accounts: dict[str, str] | dict[str, list[str]]
    manage_connections: dict[str, Any]
    multi_account: dict[str, Any]
    tools: dict[str, Any]
    workbench: dict[str, Any]
    toolkits: NotRequired[ToolkitsEnabled | ToolkitsDisabled]
    tags: NotRequired[dict[str, Any]]


class SessionExperimental(TypedDict):
    custom_toolkits: list[dict[str, Any]]
    custom_tools: list[dict[str, Any]]


class Session(TypedDict):
    session_id: str
    mcp: SessionMcp
    tool_router_tools: list[str]
    config_version: int
    config: SessionConfig
    experimental: SessionExperimental
    warnings: list[str]


# -- connected accounts ---------------------------------------------------------------------------


class ToolkitRef(TypedDict):
    slug: str


class AccountState(TypedDict):
    authScheme: str
    val: dict[str, Any]  # ``status`` and the credential's fields, secrets redacted


class AccountAuthConfig(TypedDict):
    id: str
    auth_scheme: str
    is_composio_managed: bool
    is_disabled: bool


class AccountExperimental(TypedDict):
    account_type: Literal["PRIVATE"]


class ConnectedAccount(TypedDict):
    id: str
    status: str
    status_reason: str | None
    is_disabled: bool
    user_id: str
    alias: str | None
    toolkit: ToolkitRef
    auth_config: AccountAuthConfig
    state: AccountState
    data: dict[str, Any]
    created_at: str
    updated_at: str
    test_request_endpoint: None
    experimental: AccountExperimental


class ConnectedAccountDetail(ConnectedAccount):
    params: dict[str, Any]


class AccountDeprecated(TypedDict):
    authConfigUuid: str
    uuid: str


class AccountCreated(TypedDict):
    id: str
    connectionData: AccountState
    status: str
    redirect_url: str | None  # where to send the user when an OAuth2 sign-in started
    redirect_uri: str | None
    deprecated: AccountDeprecated


class AccountUpdated(TypedDict):
    id: str
    status: str
    success: bool


class AccountRefreshed(TypedDict):
    id: str
    status: str
    redirect_url: None


class AccountLink(TypedDict):
    connected_account_id: str
    link_token: str
    redirect_url: str
    expires_at: str


# -- auth configs ---------------------------------------------------------------------------------

AuthConfigStatus = Literal["ENABLED", "DISABLED"]


class AuthConfigToolkit(TypedDict):
    slug: str
    logo: str


class AuthConfig(TypedDict):
    id: str
    uuid: str
    name: str
    type: Literal["custom"]
    status: AuthConfigStatus
    no_of_connections: int
    toolkit: AuthConfigToolkit
    tool_access_config: dict[str, Any]
    auth_scheme: str
    credentials: dict[str, Any]  # secrets redacted
    is_composio_managed: bool
    is_enabled_for_tool_router: bool
    restrict_to_following_tools: list[str]
    expected_input_fields: list[dict[str, Any]]
    created_at: str
    created_by: str | None
    last_updated_at: str


class AuthConfigCreatedBody(TypedDict):
    id: str
    auth_scheme: str
    is_composio_managed: bool
    restrict_to_following_tools: list[str]


class AuthConfigCreated(TypedDict):
    auth_config: AuthConfigCreatedBody
    toolkit: ToolkitRef


class AuthConfigStatusChanged(TypedDict):
    success: bool
    status: AuthConfigStatus


# -- toolkits -------------------------------------------------------------------------------------


class ToolkitMeta(TypedDict):
    categories: list[dict[str, Any]]
    created_at: str
    updated_at: str
    description: str
    logo: str
    tools_count: int
    triggers_count: int
    version: str


class ToolkitDetailMeta(ToolkitMeta):
    available_versions: list[str]


class ToolkitDeprecated(TypedDict):
    toolkitId: str


class ToolkitDetailDeprecated(ToolkitDeprecated):
    rawProxyInfoByAuthSchemes: list[dict[str, Any]]


class Toolkit(TypedDict):
    slug: str
    name: str
    type: Literal["native"]
    is_local_toolkit: bool
    meta: ToolkitMeta
    deprecated: ToolkitDeprecated
    auth_schemes: list[str]
    composio_managed_auth_schemes: list[str]
    no_auth: bool
    base_url: str | None


class AuthFields(TypedDict):
    required: list[dict[str, Any]]
    optional: list[dict[str, Any]]


class AuthModeFields(TypedDict):
    auth_config_creation: AuthFields
    connected_account_initiation: AuthFields


class ProxyBaseUrl(TypedDict):
    base_url: str


class AuthConfigDetail(TypedDict):
    mode: str
    name: str
    fields: AuthModeFields
    proxy: NotRequired[ProxyBaseUrl]  # only for toolkits with a fixed base URL


class ToolkitDetail(TypedDict):
    slug: str
    name: str
    type: Literal["native"]
    enabled: bool
    is_local_toolkit: bool
    meta: ToolkitDetailMeta
    composio_managed_auth: list[dict[str, Any]]
    composio_managed_auth_schemes: list[str]
    deprecated: ToolkitDetailDeprecated
    auth_config_details: list[AuthConfigDetail]
    base_url: str | None


def account_state(view: AccountView) -> AccountState:
    return {"authScheme": view.auth_scheme, "val": {"status": view.status, **view.val}}


def account(view: AccountView) -> ConnectedAccount:
    state = account_state(view)
    return {
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


def account_detail(view: AccountView) -> ConnectedAccountDetail:
    return {**account(view), "params": {}}


def auth_config(view: AuthConfigView) -> AuthConfig:
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


def _meta(connection_type: ConnectionType) -> ToolkitMeta:
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


def toolkit_item(connection_type: ConnectionType) -> Toolkit:
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


def _auth_config_detail(scheme: str, base_url: str | None) -> AuthConfigDetail:
    detail: AuthConfigDetail = {
        "mode": scheme,
        "name": scheme.replace("_", " ").title(),
        "fields": {
            "auth_config_creation": {"required": [], "optional": []},
            "connected_account_initiation": {"required": [], "optional": []},
        },
    }
    if base_url:
        detail["proxy"] = {"base_url": base_url}
    return detail


def toolkit_detail(connection_type: ConnectionType) -> ToolkitDetail:
    base = fixed_base_url(connection_type)
    return {
        "slug": connection_type.id,
        "name": connection_type.name,
        "type": "native",
        "enabled": True,
        "is_local_toolkit": True,
        "meta": {**_meta(connection_type), "available_versions": ["1"]},
        "composio_managed_auth": [],
        "composio_managed_auth_schemes": [],
        "deprecated": {"toolkitId": connection_type.id, "rawProxyInfoByAuthSchemes": []},
        "auth_config_details": [
            _auth_config_detail(scheme, base) for scheme in supported_schemes(connection_type)
        ],
        "base_url": base,
    }
