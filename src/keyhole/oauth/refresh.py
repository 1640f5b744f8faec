"""Access tokens for the proxy: cached in process, refreshed a margin before expiry, once.

Single flight at two levels: concurrent calls of one process share one refresh task per
connection; processes serialise on a :mod:`keyhole.oauth.locks` lock and re-read the tokens
after taking it, so a refresh another process just made is used rather than repeated. A refresh
answered ``invalid_grant`` marks the connection for reauthorization; calls then fail with
:class:`ReauthorizationRequired` without reaching the upstream.

Everything cached here (a token, a failure) is kept only for the connection row's ``version``
it was read under: every write to the connection or its tokens, by any process, bumps it, and
the target each call brings is re-read every ``KEYHOLE_CACHE_TTL_SECONDS``. So a
re-authorization, a fixed configuration or a revoked grant reaches every process within that
TTL, at no cost to the hot path: a fresh cached token is a dict lookup, an integer and a float
comparison; no database."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from keyhole.connections.binding import binding_digest
from keyhole.connections.service import ConnectionService
from keyhole.connections.target import HttpTarget
from keyhole.errors import InvalidRequest, KeyholeError, UpstreamUnreachable
from keyhole.oauth.errors import ReauthorizationRequired
from keyhole.oauth.locks import RefreshLock
from keyhole.oauth.models import TOKENS_REAUTHORIZE
from keyhole.oauth.store import StoredTokens, TokenStore
from keyhole.oauth.token_endpoint import OAuthClient, TokenEndpoint, TokenEndpointError, TokenSet

logger = logging.getLogger("keyhole.oauth")

OAUTH2 = "oauth2"
_MAX_CACHED = 10_000
CLIENT_REFUSED_COOLDOWN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Entry:
    access_token: str
    expires_at: float | None  # epoch seconds
    base: HttpTarget  # the connection target the token was applied to
    target: HttpTarget  # the same with the token injected


@dataclass(frozen=True, slots=True)
class _Failure:
    error: Callable[[], KeyholeError]  # a fresh error each time: callers annotate them
    until: float  # monotonic seconds
    version: int  # the connection row's version it was found at


def with_token(target: HttpTarget, access_token: str) -> HttpTarget:
    """The target with ``Authorization: Bearer <token>`` locked and the token (in every echo form)
    scrubbed from echoes."""
    return dataclasses.replace(
        target,
        credential_headers={"Authorization": f"Bearer {access_token}"},
        scrubber=target.scrubber.with_secrets([access_token]),
    )


def _reauthorize(reason: str) -> ReauthorizationRequired:
    return ReauthorizationRequired(
        f"the connection's OAuth authorization is no longer valid ({reason}); reconnect it "
        "(POST /api/connections/connect/ or POST /connected_accounts/link) before calling it again",
        metadata={"reason": reason},
    )


def _bound(stored: StoredTokens | None, target: HttpTarget) -> TokenSet | None:
    """The stored tokens, unless they were granted for another target than ``target``'s: a
    connection whose base URL or OAuth endpoints changed never sends its old tokens anywhere."""
    if stored is None or stored.tokens is None:
        return None
    return stored.tokens if stored.binding in (None, target.binding) else None


def _retargeted() -> ReauthorizationRequired:
    return ReauthorizationRequired(
        "the connection's target (base URL or OAuth endpoints) changed since it was authorized; its "
        "tokens are not sent to the new target. Reconnect it (POST /api/connections/connect/ or "
        "POST /connected_accounts/link)",
        key="authorization_required",
    )


def _client_refused(error: str) -> ReauthorizationRequired:
    return ReauthorizationRequired(
        f"the OAuth client of this connection was refused ({error}); fix its client_id, client_secret "
        "or token_url (PUT /api/connections/{id})",
        key="oauth_client_rejected",
    )


class TokenBroker:
    def __init__(
        self,
        connections: ConnectionService,
        store: TokenStore,
        endpoint: TokenEndpoint,
        lock: RefreshLock,
        *,
        margin_seconds: float,
        cache_ttl_seconds: float,
    ) -> None:
        self._connections = connections
        self._store = store
        self._endpoint = endpoint
        self._lock = lock
        self._margin = margin_seconds
        self._dead_ttl = cache_ttl_seconds
        # A token is the credential's (a shared copy uses its parent's: ``credential_connection_id``
        # keys the stored tokens, the lock, refreshes and failures); the target it was put into is
        # each connection's own, so ``_entries`` are keyed by the target's ``connection_id``.
        self._entries: dict[str, _Entry] = {}
        self._dead: dict[str, _Failure] = {}  # recent failures, replayed without I/O
        self._inflight: dict[tuple[str, str], asyncio.Task[TokenSet]] = {}
        connections.on_change(self._forget)

    # -- the proxy's two hooks ----------------------------------------------------------------

    async def authorize(self, target: HttpTarget) -> HttpTarget:
        """``target`` with a fresh access token; refreshes (once, across processes) when needed."""
        entry = self._entries.get(target.connection_id)
        if entry is not None and entry.base.version == target.version and self._fresh(entry.expires_at):
            return (
                entry.target
                if entry.base is target
                else self._remember(target, entry.access_token, entry.expires_at)
            )
        dead = self._dead.get(target.credential_connection_id)
        if dead is not None and dead.version == target.version and dead.until > time.monotonic():
            raise dead.error()
        stored = await self._store.read(target.credential_connection_id)
        if stored is not None and stored.state == TOKENS_REAUTHORIZE:
            raise self._died(target, stored.error or "authorization revoked")
        current = _bound(stored, target)
        if current is not None:
            expires = _epoch(current)
            if self._fresh(expires):
                return self._remember(target, current.access_token, expires)
        tokens = await self._refresh(target, current.access_token if current is not None else None)
        return self._remember(target, tokens.access_token, _epoch(tokens))

    async def after_unauthorized(self, target: HttpTarget) -> HttpTarget:
        """The upstream answered 401 to ``target``'s token: refresh once (unless another call or
        process already replaced that token) and return the target to retry with."""
        used = target.credential_headers.get("Authorization", "").removeprefix("Bearer ")
        self._entries.pop(target.connection_id, None)
        tokens = await self._refresh(target, used or None)
        return self._remember(target, tokens.access_token, _epoch(tokens))

    # -- refresh ------------------------------------------------------------------------------

    async def _refresh(self, target: HttpTarget, used: str | None) -> TokenSet:
        key = (target.credential_connection_id, target.binding)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._refresh_locked(target, used))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        try:
            return await asyncio.shield(task)
        except KeyholeError as exc:  # shared by every waiter: give each its own copy to annotate
            fresh = copy.copy(exc)
            fresh.metadata = dict(exc.metadata)
            raise fresh from None

    async def _refresh_locked(self, target: HttpTarget, used: str | None) -> TokenSet:
        connection_id, organization_id = target.credential_connection_id, target.credential_organization_id
        await self._store.ensure(organization_id, connection_id)
        holder = await self._lock.acquire(connection_id)
        try:
            stored = await self._store.read(connection_id)  # another process may have refreshed
            if stored is not None and stored.state == TOKENS_REAUTHORIZE:
                raise self._died(target, stored.error or "authorization revoked")
            current = _bound(stored, target)
            if current is not None and current.access_token != used and self._fresh(_epoch(current)):
                return current
            client = await self._client(target)
            granted_elsewhere = current is None and stored is not None and stored.tokens is not None
            if granted_elsewhere and client.grant != "client_credentials":
                raise _retargeted()
            tokens = await self._fetch(client, current, target)
            await self._store.save(organization_id, connection_id, tokens, binding=target.binding)
            logger.info(
                "oauth tokens refreshed", extra={"connection_id": connection_id, "grant": client.grant}
            )
            return tokens
        finally:
            await self._lock.release(connection_id, holder)

    async def _fetch(self, client: OAuthClient, current: TokenSet | None, target: HttpTarget) -> TokenSet:
        connection_id, organization_id = target.credential_connection_id, target.credential_organization_id
        try:
            if client.grant == "client_credentials":
                return await self._endpoint.client_credentials(client)
            if current is None:  # never authorized: nothing to mark, the flow is simply pending
                raise ReauthorizationRequired(
                    "the connection is not authorized yet; complete the connect flow "
                    "(POST /api/connections/connect/ or POST /connected_accounts/link) first",
                    key="authorization_required",
                )
            if not current.refresh_token:
                reason = "the provider sent no refresh token and the access token expired"
                await self._store.mark_reauthorization(organization_id, connection_id, reason)
                raise self._died(target, reason)
            return await self._endpoint.refresh(client, current.refresh_token)
        except TokenEndpointError as exc:
            if not exc.permanent:
                raise UpstreamUnreachable(
                    f"the OAuth token endpoint refused the refresh ({exc.error}); try again later",
                    key="oauth_refresh_failed",
                ) from None
            if client.grant == "client_credentials":
                # Nothing to reconnect: the client itself is refused. Not stored: this process
                # waits a cool-down before asking again, unless the configuration is fixed first
                # (through any process: that bumps the version).
                refused = functools.partial(_client_refused, exc.error)
                self._fail(target, refused, CLIENT_REFUSED_COOLDOWN_SECONDS)
                raise refused() from None
            reason = f"the token endpoint answered {exc.error} to the refresh"
            await self._store.mark_reauthorization(organization_id, connection_id, reason)
            logger.warning(
                "oauth refresh failed permanently", extra={"connection_id": connection_id, "error": exc.error}
            )
            raise self._died(target, reason) from None

    async def _client(self, target: HttpTarget) -> OAuthClient:
        connection_type, configuration = await self._connections.full_configuration(
            target.credential_organization_id, target.credential_connection_id
        )
        if binding_digest(connection_type, configuration) != target.binding:
            # The connection changed after ``target`` was read: its tokens must not meet the new
            # endpoints, whatever this call's (older) view of the target says.
            raise _retargeted()
        auth = configuration.get("auth")
        if not isinstance(auth, dict) or auth.get("type") != OAUTH2:
            raise InvalidRequest("the connection does not use OAuth2", key="oauth_not_configured")
        return OAuthClient.from_auth(auth)

    # -- cache --------------------------------------------------------------------------------

    def _fresh(self, expires_at: float | None) -> bool:
        return expires_at is None or expires_at - self._margin > time.time()

    def _remember(self, base: HttpTarget, access_token: str, expires_at: float | None) -> HttpTarget:
        target = with_token(base, access_token)
        if len(self._entries) > _MAX_CACHED:
            self._entries.clear()
        self._entries[base.connection_id] = _Entry(access_token, expires_at, base, target)
        self._dead.pop(base.credential_connection_id, None)
        return target

    def _died(self, target: HttpTarget, reason: str) -> ReauthorizationRequired:
        self._entries.pop(target.connection_id, None)
        if self._dead_ttl > 0:
            self._fail(target, functools.partial(_reauthorize, reason), self._dead_ttl)
        return _reauthorize(reason)

    def _fail(self, target: HttpTarget, error: Callable[[], KeyholeError], seconds: float) -> None:
        self._dead[target.credential_connection_id] = _Failure(
            error, time.monotonic() + seconds, target.version
        )

    def _forget(self, organization_id: str, connection_id: str) -> None:
        self._entries.pop(connection_id, None)
        self._dead.pop(connection_id, None)


def _epoch(tokens: TokenSet) -> float | None:
    return tokens.expires_at.timestamp() if tokens.expires_at is not None else None
