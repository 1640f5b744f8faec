"""Which connections the OAuth2 connect flow authorizes: an organization's own connection (a
shared copy uses its parent's authorization) whose ``auth`` is OAuth2 with the authorization-code
grant and an authorization URL. One rule for the flow, which refuses the others, and for the pages
that offer it."""

from __future__ import annotations

from collections.abc import Mapping

from keyhole.connections.schemas import ConnectionView

OAUTH2 = "oauth2"
AUTHORIZATION_CODE = "authorization_code"


def connect_flow_refusal(auth: object) -> str | None:
    """Why the connect flow cannot authorize a connection with this ``auth`` configuration, or
    None when it can."""
    if not isinstance(auth, Mapping) or auth.get("type") != OAUTH2:
        return "the connection does not use OAuth2 (configuration.auth.type must be oauth2)"
    if (auth.get("grant") or AUTHORIZATION_CODE) != AUTHORIZATION_CODE or not auth.get("authorization_url"):
        return (
            "the connect flow needs an authorization_code grant with an authorization_url; "
            "client_credentials connections fetch their tokens by themselves"
        )
    return None


def authorizes_through_provider(view: ConnectionView) -> bool:
    """Whether the connect flow can authorize this connection (as its redacted view shows it)."""
    return view.parent_connection_id is None and connect_flow_refusal(view.configuration.get("auth")) is None
