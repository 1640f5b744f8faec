"""The OAuth domain's entry points for the dialects: connect a new or existing connection
(Polytomic), initiate a connected account from an OAUTH2 auth config (Composio)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyhole.authconfigs.service import PUBLIC_CREDENTIALS, AuthConfigService
from keyhole.connections.binding import check_shared_target
from keyhole.connections.schemas import ConnectionCreate
from keyhole.connections.service import ConnectionService
from keyhole.egress import EgressClient
from keyhole.errors import InvalidRequest
from keyhole.oauth.flows import FlowStart, OAuthFlows
from keyhole.oauth.locks import DatabaseRefreshLock, RedisRefreshLock, RefreshLock
from keyhole.oauth.refresh import OAUTH2, TokenBroker
from keyhole.oauth.store import TokenStore
from keyhole.oauth.token_endpoint import TokenEndpoint
from keyhole.settings import Settings
from keyhole.store.database import Database
from keyhole.tenancy.principal import Principal
from keyhole.vault import Vault

GENERIC_TYPE = "api"
OAUTH2_SCHEME = "OAUTH2"
# Keys of a Composio OAUTH2 auth config's credentials that make up the OAuth client.
_CLIENT_KEYS = ("authorization_url", "token_url", "client_id", "client_secret")


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    name: str
    redirect_url: str
    callback_url: str  # Keyhole's own callback URL (public base + CALLBACK_PATH)
    connection_id: str | None = None  # re-authorize this connection
    type_id: str | None = None  # or create one of this type…
    configuration: Mapping[str, Any] | None = None  # …with this configuration
    ttl_seconds: int | None = None
    dark: bool = False


@dataclass
class OAuthServices:
    store: TokenStore
    endpoint: TokenEndpoint
    lock: RefreshLock
    broker: TokenBroker
    flows: OAuthFlows
    connections: ConnectionService
    auth_configs: AuthConfigService

    @classmethod
    def build(
        cls,
        settings: Settings,
        database: Database,
        vault: Vault,
        connections: ConnectionService,
        egress: EgressClient,
        auth_configs: AuthConfigService,
    ) -> OAuthServices:
        store = TokenStore(database, vault)
        connections.on_retarget(store.discard_for_new_target)
        endpoint = TokenEndpoint(egress)
        lock: RefreshLock
        if settings.redis_url:
            lock = RedisRefreshLock(
                settings.redis_url,
                ttl_seconds=settings.oauth_lock_ttl_seconds,
                wait_seconds=settings.oauth_lock_wait_seconds,
            )
        else:
            lock = DatabaseRefreshLock(
                database,
                ttl_seconds=settings.oauth_lock_ttl_seconds,
                wait_seconds=settings.oauth_lock_wait_seconds,
            )
        broker = TokenBroker(
            connections,
            store,
            endpoint,
            lock,
            margin_seconds=settings.oauth_refresh_margin_seconds,
            cache_ttl_seconds=settings.cache_ttl_seconds,
        )
        flows = OAuthFlows(database, vault, connections, store, endpoint)
        return cls(store, endpoint, lock, broker, flows, connections, auth_configs)

    async def close(self) -> None:
        await self.lock.close()

    async def connect(self, principal: Principal, request: ConnectRequest) -> FlowStart:
        connection_id = request.connection_id
        if connection_id is None:
            if request.type_id is None or request.configuration is None:
                raise InvalidRequest(
                    "name the connection to authorize (connection), or give type and configuration "
                    "(with an oauth2 auth) to create one",
                    key="invalid_connect_request",
                    metadata={"field": "connection"},
                )
            _require_oauth(request.configuration)
            view = await self.connections.create(
                principal,
                ConnectionCreate(
                    name=request.name,
                    type_id=request.type_id,
                    configuration=dict(request.configuration),
                    validate=False,
                ),
            )
            connection_id = view.id
        return await self.flows.start(
            principal,
            connection_id,
            redirect_url=request.redirect_url,
            callback_url=request.callback_url,
            ttl_seconds=request.ttl_seconds,
            name=request.name,
            dark=request.dark,
        )

    async def starts_flow(self, principal: Principal, auth_config_id: str) -> bool:
        """Whether accounts of this auth config are created through the sign-in flow."""
        config, _ = await self.auth_configs.credentials(principal, auth_config_id)
        return config.auth_scheme == OAUTH2_SCHEME and config.toolkit_slug == GENERIC_TYPE

    async def initiate_account(
        self,
        principal: Principal,
        *,
        auth_config_id: str,
        user_id: str,
        alias: str | None,
        val: Mapping[str, Any],
        redirect_url: str,
        callback_url: str,
    ) -> FlowStart:
        """A Composio OAUTH2 account: created INITIATED from the auth config's OAuth client, then
        the authorization-code flow starts; the callback makes it ACTIVE."""
        config, credentials = await self.auth_configs.credentials(principal, auth_config_id)
        if not config.enabled:
            raise InvalidRequest("the auth config is disabled; enable it first", key="AuthConfig_Disabled")
        if config.auth_scheme != OAUTH2_SCHEME or config.toolkit_slug != GENERIC_TYPE:
            raise InvalidRequest(
                "only OAUTH2 auth configs of the api toolkit start a sign-in flow; create other "
                "accounts with an ACTIVE state carrying the credential",
                key="ConnectedAccount_LinkUnavailable",
            )
        sent = {k: v for k, v in val.items() if k != "status"}
        check_shared_target(
            credentials,
            sent,
            public_keys=PUBLIC_CREDENTIALS,
            fixed_base_url=False,
            require_named=True,
            used=_CLIENT_KEYS,
        )
        merged = {**credentials, **sent}
        missing = [key for key in (*_CLIENT_KEYS, "base_url") if not merged.get(key)]
        if missing:
            raise InvalidRequest(
                f"the OAUTH2 auth config's credentials lack {', '.join(missing)} (base_url may also come "
                "from connection.state.val)",
                key="AuthConfig_MissingOAuthClient",
                metadata={"field": "credentials"},
            )
        scopes = merged.get("scopes") or []
        if isinstance(scopes, str):
            scopes = [scope for scope in scopes.replace(",", " ").split() if scope]
        configuration = {
            "url": merged["base_url"],
            "auth": {
                "type": OAUTH2,
                "grant": "authorization_code",
                **{key: merged[key] for key in _CLIENT_KEYS},
                "scopes": list(scopes),
            },
        }
        view = await self.connections.create(
            principal,
            ConnectionCreate(
                name=alias or f"HTTP API ({user_id})"[:200],
                type_id=GENERIC_TYPE,
                configuration=configuration,
                validate=False,
            ),
            account={
                "account_user_id": user_id,
                "account_alias": alias,
                "account_status": "INITIATED",
                "account_status_reason": "waiting for the user to complete the sign-in",
                "auth_config_id": config.id,
                "auth_scheme": OAUTH2_SCHEME,
            },
        )
        return await self.flows.start(
            principal, view.id, redirect_url=redirect_url, callback_url=callback_url, name=alias
        )


def _require_oauth(configuration: Mapping[str, Any]) -> None:
    auth = configuration.get("auth")
    if not isinstance(auth, Mapping) or auth.get("type") != OAUTH2:
        raise InvalidRequest(
            "the connect flow authorizes oauth2 connections: configuration.auth.type must be oauth2",
            key="oauth_not_configured",
            metadata={"field": "configuration.auth"},
        )
