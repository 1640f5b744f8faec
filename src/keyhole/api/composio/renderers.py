"""Composio response bodies for connected accounts, auth configs and toolkits."""

from __future__ import annotations

from typing import Any

from keyhole.accounts.service import AccountView
from keyhole.authconfigs.service import AuthConfigView
from keyhole.connections.catalog import ConnectionType
from keyhole.connections.composio_mapping import fixed_base_url, supported_schemes
from keyhole.timestamps import timestamp


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
