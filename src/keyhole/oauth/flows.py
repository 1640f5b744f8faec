"""The authorization-code flow with PKCE: start (connect link), callback (state check, code
exchange), and the connect session a caller can read back.

``state`` and the connect token are random 256-bit values stored as SHA-256 hashes only; the
PKCE verifier is encrypted with the row bound as associated data. A state is single use (a
compare-and-swap on ``used_at``) and dies with its link (``ttl``)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from sqlalchemy import delete, select, update

from keyhole.connections.authorization import connect_flow_refusal
from keyhole.connections.binding import binding_digest
from keyhole.connections.models import Connection
from keyhole.connections.service import ConnectionService
from keyhole.errors import InvalidRequest, NotFound, UpstreamUnreachable
from keyhole.oauth.models import OAuthFlow
from keyhole.oauth.store import TokenStore
from keyhole.oauth.token_endpoint import OAuthClient, TokenEndpoint, TokenEndpointError
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.tenancy.principal import Principal
from keyhole.vault import Vault
from keyhole.vault.rotation import row_aad

DEFAULT_TTL_SECONDS = 300
MAX_TTL_SECONDS = 604_800
CALLBACK_PATH = "/api/oauth/callback"


@dataclass(frozen=True, slots=True)
class FlowStart:
    flow_id: str
    connection_id: str
    token: str  # the connect token, shown once
    redirect_url: str  # the provider's authorization URL (carries state and the PKCE challenge)
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class FlowSession:
    id: str
    name: str
    type_id: str
    connection_id: str
    redirect_url: str
    dark: bool
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class FlowDone:
    connection_id: str
    redirect_url: str  # the caller's, with status=success and the connection id added


class CallbackRefused(InvalidRequest):
    """A callback that exchanges nothing: unknown, reused or expired state, or a provider error."""


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _sealed(verifier: str, binding: str) -> bytes:
    """The flow's encrypted secret: the PKCE verifier and the target the flow was started for."""
    return orjson.dumps({"verifier": verifier, "binding": binding})


def _unsealed(plaintext: bytes) -> tuple[str, str | None]:
    if plaintext.startswith(b"{"):
        sealed = orjson.loads(plaintext)
        return str(sealed["verifier"]), str(sealed["binding"])
    return plaintext.decode(), None  # a flow started before flows recorded their target


def check_redirect_url(url: str, field: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2048:
        raise InvalidRequest(
            f"{field} must be an absolute http(s) URL of at most 2048 characters",
            key="invalid_redirect_url",
            metadata={"field": field},
        )
    return url


class OAuthFlows:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        connections: ConnectionService,
        store: TokenStore,
        endpoint: TokenEndpoint,
    ) -> None:
        self._db = database
        self._vault = vault
        self._connections = connections
        self._store = store
        self._endpoint = endpoint

    async def start(
        self,
        principal: Principal,
        connection_id: str,
        *,
        redirect_url: str,
        callback_url: str,
        ttl_seconds: int | None = None,
        name: str | None = None,
        dark: bool = False,
    ) -> FlowStart:
        ttl = DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
        if not 1 <= ttl <= MAX_TTL_SECONDS:
            raise InvalidRequest(
                f"ttl must be between 1 and {MAX_TTL_SECONDS} seconds",
                key="invalid_ttl",
                metadata={"field": "ttl"},
            )
        check_redirect_url(redirect_url, "redirect_url")
        connection_type, configuration = await self._connections.configuration_to_authorize(
            principal.organization_id, connection_id
        )
        client = self._client(configuration)
        binding = binding_digest(connection_type, configuration)
        token, state, verifier = (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(64),
        )
        flow = OAuthFlow(
            organization_id=principal.organization_id,
            connection_id=connection_id,
            token_hash=_hash(token),
            state_hash=_hash(state),
            verifier="",
            redirect_url=redirect_url,
            callback_url=callback_url,
            name=(name or connection_type.name)[:200],
            dark=dark,
            expires_at=utcnow() + timedelta(seconds=ttl),
            created_at=utcnow(),
        )
        flow.id = str(uuid.uuid4())
        flow.verifier = self._vault.encrypt(
            _sealed(verifier, binding), row_aad(OAuthFlow.__tablename__, flow.id, "verifier")
        )
        async with self._db.transaction() as session:
            session.add(flow)
        params = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": callback_url,
            "state": state,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
        if client.scopes:
            params["scope"] = " ".join(client.scopes)
        assert client.authorization_url is not None
        return FlowStart(
            flow_id=flow.id,
            connection_id=connection_id,
            token=token,
            redirect_url=_with_query(client.authorization_url, params),
            expires_at=flow.expires_at,
        )

    async def session(self, principal: Principal, token: str) -> FlowSession:
        async with self._db.session() as session:
            flow = (
                await session.execute(select(OAuthFlow).where(OAuthFlow.token_hash == _hash(token)))
            ).scalar_one_or_none()
            row = await session.get(Connection, flow.connection_id) if flow is not None else None
        if flow is None or row is None or flow.organization_id != principal.organization_id:
            raise NotFound("connect session not found", key="connect_session_not_found")
        return FlowSession(
            id=flow.id,
            name=flow.name,
            type_id=row.type_id,
            connection_id=flow.connection_id,
            redirect_url=flow.redirect_url,
            dark=flow.dark,
            expires_at=flow.expires_at,
        )

    async def callback(self, state: str | None, code: str | None, error: str | None) -> FlowDone:
        if not state:
            raise CallbackRefused(
                "the callback carries no state; start the connect flow again", key="oauth_state_invalid"
            )
        now = utcnow()
        async with self._db.transaction() as session:
            flow = (
                await session.execute(select(OAuthFlow).where(OAuthFlow.state_hash == _hash(state)))
            ).scalar_one_or_none()
            if flow is None:
                raise CallbackRefused(
                    "unknown state: this callback belongs to no connect flow started here; start it again",
                    key="oauth_state_invalid",
                )
            claimed = await session.execute(
                update(OAuthFlow)
                .where(OAuthFlow.id == flow.id, OAuthFlow.used_at.is_(None))
                .values(used_at=now)
            )
            flow_id, connection_id, organization_id = flow.id, flow.connection_id, flow.organization_id
            verifier_ct, callback_url, redirect_url, expires_at = (
                flow.verifier,
                flow.callback_url,
                flow.redirect_url,
                flow.expires_at,
            )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise CallbackRefused(
                "this connect link was already used; start the connect flow again", key="oauth_state_used"
            )
        if expires_at <= now:
            raise CallbackRefused(
                "this connect link has expired; start the connect flow again (a longer ttl gives more time)",
                key="oauth_link_expired",
            )
        if error or not code:
            return FlowDone(
                connection_id,
                _with_query(redirect_url, {"status": "error", "error": (error or "no_code")[:64]}),
            )
        verifier, started_for = _unsealed(
            self._vault.decrypt(verifier_ct, row_aad(OAuthFlow.__tablename__, flow_id, "verifier"))
        )
        connection_type, configuration = await self._connections.full_configuration(
            organization_id, connection_id
        )
        binding = binding_digest(connection_type, configuration)
        if started_for not in (None, binding):
            raise CallbackRefused(
                "the connection's target (base URL or OAuth endpoints) changed after this connect flow "
                "started; nothing was exchanged. Start the connect flow again",
                key="oauth_target_changed",
            )
        client = self._client(configuration)
        try:
            tokens = await self._endpoint.exchange_code(client, code, verifier, callback_url)
        except TokenEndpointError as exc:
            raise UpstreamUnreachable(
                f"the provider refused the authorization code ({exc.error}); start the connect flow again",
                key="oauth_code_exchange_failed",
            ) from None
        await self._store.save(organization_id, connection_id, tokens, binding=binding)
        self._connections.invalidate(organization_id, connection_id)
        return FlowDone(
            connection_id,
            _with_query(
                redirect_url,
                {"status": "success", "connection_id": connection_id, "connected_account_id": connection_id},
            ),
        )

    async def purge_expired(self, *, grace_seconds: int = 86_400) -> int:
        """Delete flows a day past their expiry (kept that long so a late callback still gets
        ``oauth_link_expired`` rather than ``oauth_state_invalid``)."""
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(OAuthFlow).where(OAuthFlow.expires_at < utcnow() - timedelta(seconds=grace_seconds))
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def _client(configuration: dict[str, Any]) -> OAuthClient:
        auth = configuration.get("auth")
        refusal = connect_flow_refusal(auth)
        if refusal is not None:
            raise InvalidRequest(refusal, key="oauth_not_configured")
        assert isinstance(auth, dict)
        return OAuthClient.from_auth(auth)
