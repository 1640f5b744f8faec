"""The token endpoint, called through the egress layer: code exchange, refresh, client credentials.

Nothing here logs or returns a secret: errors carry the provider's ``error`` code and a message
built by Keyhole, never the response body (which may echo a code or a token)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import yarl

from keyhole.egress import EgressClient, read_capped
from keyhole.errors import UpstreamUnreachable
from keyhole.store.base import utcnow

TOKEN_TIMEOUT_MS = 15_000
MAX_TOKEN_RESPONSE_BYTES = 65_536


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """The OAuth client of a connection (from its ``auth`` configuration)."""

    grant: str  # "authorization_code" | "client_credentials"
    token_url: str
    authorization_url: str | None
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]

    @classmethod
    def from_auth(cls, auth: Mapping[str, Any]) -> OAuthClient:
        return cls(
            grant=str(auth.get("grant") or "authorization_code"),
            token_url=str(auth["token_url"]),
            authorization_url=str(auth["authorization_url"]) if auth.get("authorization_url") else None,
            client_id=str(auth["client_id"]),
            client_secret=str(auth.get("client_secret") or ""),
            scopes=tuple(str(scope) for scope in auth.get("scopes") or ()),
        )


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None

    def as_secret(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token}


class TokenEndpointError(Exception):
    """The token endpoint refused the grant. ``permanent`` for ``invalid_grant`` (the refresh token
    or code is dead: the user must reconnect); anything else may pass."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(f"the token endpoint answered {status} {error}")
        self.error = error
        self.status = status

    @property
    def permanent(self) -> bool:
        return self.error in ("invalid_grant", "unauthorized_client", "invalid_client")


class TokenEndpoint:
    def __init__(self, egress: EgressClient) -> None:
        self._egress = egress

    async def exchange_code(
        self, client: OAuthClient, code: str, verifier: str, redirect_uri: str
    ) -> TokenSet:
        return await self._post(
            client,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            previous_refresh=None,
        )

    async def refresh(self, client: OAuthClient, refresh_token: str) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._post(client, form, previous_refresh=refresh_token)

    async def client_credentials(self, client: OAuthClient) -> TokenSet:
        form = {"grant_type": "client_credentials"}
        if client.scopes:
            form["scope"] = " ".join(client.scopes)
        return await self._post(client, form, previous_refresh=None)

    async def _post(
        self, client: OAuthClient, form: dict[str, str], *, previous_refresh: str | None
    ) -> TokenSet:
        # client_secret_basic (RFC 6749 §2.3.1: form-encode, then base64 id:secret).
        pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
        headers = {
            "Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        async with self._egress.request(
            "POST",
            yarl.URL(client.token_url),
            headers=headers,
            data=urlencode(form).encode(),
            timeout_ms=TOKEN_TIMEOUT_MS,
        ) as response:
            raw, _ = await read_capped(response, MAX_TOKEN_RESPONSE_BYTES)
            status = response.status
        payload = _json(raw)
        if status >= 400 or "access_token" not in payload:
            error = payload.get("error")
            if isinstance(error, str) and status < 500:
                raise TokenEndpointError(error[:64], status)
            raise UpstreamUnreachable(
                f"the OAuth token endpoint answered {status} without a token; try again later",
                key="oauth_token_endpoint_failed",
            )
        return _token_set(payload, previous_refresh)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _token_set(payload: Mapping[str, Any], previous_refresh: str | None) -> TokenSet:
    access = payload.get("access_token")
    if not isinstance(access, str) or not access:
        raise UpstreamUnreachable(
            "the OAuth token endpoint sent no access_token", key="oauth_token_endpoint_failed"
        )
    refresh = payload.get("refresh_token")
    expires_in = payload.get("expires_in")
    expires_at = None
    if isinstance(expires_in, int | float | str) and str(expires_in).replace(".", "", 1).isdigit():
        expires_at = utcnow() + timedelta(seconds=float(expires_in))
    return TokenSet(
        access_token=access,
        # Rotation: a new refresh token replaces the old; none sent keeps the old one.
        refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh,
        expires_at=expires_at,
    )
