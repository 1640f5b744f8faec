"""Web console sessions: an API key exchanged once for a server-side session.

The browser holds only a random token (256 bits) in an HttpOnly cookie; the store holds its
SHA-256, the key it was signed in with and its times. Every request resolves the session through
the key's row, so revoking the key (or deleting its user or organization) ends the session at
once, in every process. The CSRF token is an HMAC of the session token: bound to the session,
never stored, never in a cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from keyhole.errors import Forbidden, Unauthenticated
from keyhole.store.base import utcnow
from keyhole.tenancy.models import BrowserSession
from keyhole.tenancy.principal import Principal
from keyhole.tenancy.repository import TenancyRepository
from keyhole.tenancy.service import TenancyService, principal_of_key

# A session's last-seen time is written at most this often: one write per minute of use, not per page.
_TOUCH_EVERY = timedelta(seconds=60)
_TOKEN_BYTES = 32
_MAX_TOKEN = 128
_SIGNED_OUT = (
    "your console session has ended (signed out, idle too long, expired, or its key was revoked); "
    "sign in again"
)


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    principal: Principal
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StartedSession:
    token: str  # for the cookie only
    session: ConsoleSession


class BrowserSessions:
    def __init__(
        self,
        tenancy: TenancyService,
        rows: TenancyRepository,
        *,
        idle_seconds: float,
        lifetime_seconds: float,
    ) -> None:
        self._tenancy = tenancy
        self._rows = rows
        self._idle = timedelta(seconds=idle_seconds)
        self._lifetime = timedelta(seconds=lifetime_seconds)

    async def sign_in(self, key: str) -> StartedSession:
        """A new session for a user or organization key (a fresh token every time: no fixation).
        A partner key manages organizations through the API and cannot sign in."""
        principal = await self._tenancy.principal_for_key(key.strip())
        if principal.kind == "partner":
            raise Forbidden(
                "a partner key cannot sign in to the console: sign in with a user key or an "
                "organization key of the organization to operate",
                key="partner_key_not_allowed",
            )
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        now = utcnow()
        expires_at = now + self._lifetime
        row = BrowserSession(
            token_hash=_digest(token),
            key_id=principal.key_id,
            created_at=now,
            seen_at=now,
            expires_at=expires_at,
        )
        await self._rows.add_browser_session(row)
        return StartedSession(token, ConsoleSession(principal, csrf_token_for(token), expires_at))

    async def resolve(self, token: str | None) -> ConsoleSession:
        """The live session a cookie's token names; Unauthenticated for any other."""
        if not token or len(token) > _MAX_TOKEN:
            raise Unauthenticated(_SIGNED_OUT, key="session_ended")
        token_hash = _digest(token)
        found = await self._rows.browser_session(token_hash)
        now = utcnow()
        if found is None:
            raise Unauthenticated(_SIGNED_OUT, key="session_ended")
        row, key, role = found
        if key.revoked_at is not None or row.expires_at <= now or row.seen_at + self._idle <= now:
            await self._rows.delete_browser_session(token_hash)
            raise Unauthenticated(_SIGNED_OUT, key="session_ended")
        if now - row.seen_at >= _TOUCH_EVERY:
            await self._rows.touch_browser_session(token_hash, now)
        return ConsoleSession(principal_of_key(key, role), csrf_token_for(token), row.expires_at)

    async def sign_out(self, token: str | None) -> None:
        if token and len(token) <= _MAX_TOKEN:
            await self._rows.delete_browser_session(_digest(token))

    async def purge_expired(self) -> int:
        now = utcnow()
        return await self._rows.delete_browser_sessions_before(now, now - self._idle)


def csrf_token_for(token: str) -> str:
    mac = hmac.new(token.encode(), b"keyhole console csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_matches(session: ConsoleSession, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(session.csrf_token.encode(), presented.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
