"""Every route of the Polytomic dialect, and how its OpenAPI section describes them. Fixed paths
come before parameterised ones."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Route

from keyhole.api.errors import ErrorEnvelope
from keyhole.api.openapi import Section
from keyhole.api.polytomic import (
    calls,
    connect,
    connections,
    identity,
    jobs,
    keys,
    organizations,
    proxy,
    queries,
    shared_connections,
    users,
)
from keyhole.idempotency.service import KEY_PATTERN

# Also served ahead of the router (``api.fast_routes``): the same objects, first in the router too.
proxy_routes = [Route("/api/connections/{connection_id}/proxy", proxy.execute, methods=["POST"])]

routes: list[BaseRoute] = [
    *proxy_routes,
    Route("/api/connection_types", connections.list_types, methods=["GET"]),
    Route("/api/connection_types/{type_id}", connections.get_type, methods=["GET"]),
    Route(
        "/api/connection_types/{type_id}/parameter_values",
        connections.type_parameter_values,
        methods=["POST"],
    ),
    Route("/api/connections", connections.list_connections, methods=["GET"]),
    Route("/api/connections", connections.create_connection, methods=["POST"]),
    Route("/api/connections/test", connections.test_connection, methods=["POST"]),
    Route("/api/connections/connect/", connect.start, methods=["POST"]),
    Route("/api/connections/connect", connect.start, methods=["POST"]),
    Route("/api/connections/connect/session", connect.session, methods=["GET"]),
    Route("/api/connections/{connection_id}", connections.get_connection, methods=["GET"]),
    Route("/api/connections/{connection_id}", connections.update_connection, methods=["PUT"]),
    Route("/api/connections/{connection_id}", connections.delete_connection, methods=["DELETE"]),
    Route(
        "/api/connections/{connection_id}/parameter_values",
        connections.connection_parameter_values,
        methods=["GET"],
    ),
    Route("/api/connections/{connection_id}/proxy/info", proxy.info, methods=["GET"]),
    Route("/api/connections/{connection_id}/proxy/settings", proxy.get_settings, methods=["GET"]),
    Route("/api/connections/{connection_id}/proxy/settings", proxy.put_settings, methods=["PUT"]),
    Route("/api/connections/{connection_id}/proxy/calls", proxy.calls, methods=["GET"]),
    Route("/api/connections/{connection_id}/shared", shared_connections.list_shared, methods=["GET"]),
    Route("/api/proxy/calls", calls.organization_calls, methods=["GET"]),  # Keyhole extension
    Route("/api/jobs/{job_type}/{job_id}", jobs.get_job, methods=["GET"]),
    Route("/api/connections/{connection_id}/query", queries.run_query, methods=["POST"]),
    Route("/api/queries/{query_id}", queries.get_query, methods=["GET"]),
    Route("/api/queries/{query_id}", queries.cancel_query, methods=["DELETE"]),
    Route("/api/queries/{query_id}/export", queries.export_query, methods=["GET"]),  # Keyhole extension
    # Organizations (the caller's own; a partner account's)
    Route("/api/organization", organizations.current, methods=["GET"]),
    Route("/api/organizations", organizations.list_organizations, methods=["GET"]),
    Route("/api/organizations", organizations.create_organization, methods=["POST"]),
    Route("/api/organizations/{organization_id}", organizations.get_organization, methods=["GET"]),
    Route("/api/organizations/{organization_id}", organizations.update_organization, methods=["PUT"]),
    Route("/api/organizations/{organization_id}", organizations.delete_organization, methods=["DELETE"]),
    # Users and keys: the caller's own organization, and an organization the caller manages
    Route("/api/organization/users", users.list_current_users, methods=["GET"]),
    Route("/api/organization/users", users.create_current_user, methods=["POST"]),
    Route("/api/organization/users/{user_id}", users.get_current_user, methods=["GET"]),
    Route("/api/organization/users/{user_id}", users.update_current_user, methods=["PUT"]),
    Route("/api/organization/users/{user_id}", users.delete_current_user, methods=["DELETE"]),
    Route("/api/organizations/{organization_id}/users", users.list_users, methods=["GET"]),
    Route("/api/organizations/{organization_id}/users", users.create_user, methods=["POST"]),
    Route("/api/organizations/{organization_id}/users/{user_id}", users.get_user, methods=["GET"]),
    Route("/api/organizations/{organization_id}/users/{user_id}", users.update_user, methods=["PUT"]),
    Route("/api/organizations/{organization_id}/users/{user_id}", users.delete_user, methods=["DELETE"]),
    Route(
        "/api/organizations/{organization_id}/users/{user_id}/keys", keys.create_user_key, methods=["POST"]
    ),
    # Keyhole extension: an organization's keys, listed (by prefix) and revoked
    Route("/api/organization/keys", keys.list_current_keys, methods=["GET"]),
    Route("/api/organization/keys/{key_id}", keys.revoke_current_key, methods=["DELETE"]),
    Route("/api/organizations/{organization_id}/keys", keys.list_keys, methods=["GET"]),
    Route("/api/organizations/{organization_id}/keys/{key_id}", keys.revoke_key, methods=["DELETE"]),
    # Who the caller is
    Route("/api/me", identity.me, methods=["GET"]),
    # Shared connections of a partner account
    Route(
        "/api/organizations/{organization_id}/connections/{connection_id}/shared",
        shared_connections.list_partner_shared,
        methods=["GET"],
    ),
    Route(
        "/api/organizations/{organization_id}/connections/{connection_id}/shared",
        shared_connections.share,
        methods=["POST"],
    ),
]


def _headers(method: str) -> list[dict[str, Any]]:
    version = {
        "name": "X-Polytomic-Version",
        "in": "header",
        "required": False,
        "description": "The API version the client speaks (YYYY-MM-DD), echoed on the answer; a value "
        "of another form is ignored and the answer carries the default version.",
        "schema": {"type": "string"},
    }
    if method != "POST":
        return [version]
    idempotency = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Repeat a POST safely: the same key and body within the idempotency window "
        "(24 hours unless the operator sets KEYHOLE_IDEMPOTENCY_TTL_SECONDS) answers the first answer "
        "again (the same key with another body is a 422).",
        "schema": {"type": "string", "pattern": KEY_PATTERN.pattern},
    }
    return [version, idempotency]


section = Section(
    routes=routes,
    error_shape=ErrorEnvelope,
    common_errors=(400, 401, 403, 404, 429, 503),
    headers=_headers,
    empty_query_is_absent=True,
    tag_descriptions={
        "Connections": "Connections and the connection types of the catalog.",
        "Proxy": "Authenticated calls through a connection to its upstream API.",
        "Queries": "Asynchronous SQL on a database connection, paginated and expiring.",
        "Jobs": "Asynchronous proxy calls and their downloadable results.",
        "Audit": "Who called what through the proxy (Keyhole extension).",
        "Organizations": "The caller's organization and, for partners, the organizations they manage.",
        "Users": "Users of an organization and their keys.",
        "Keys": "An organization's API keys (Keyhole extension).",
        "Identity": "Who the caller is.",
    },
)
