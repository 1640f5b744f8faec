"""Reading and writing a connection's OAuth tokens (one encrypted column, compare-and-swap on
``version``) and the health columns of the connection they belong to.

Every change of the tokens also writes the connection row in the same transaction, which bumps
the row's ``version``: that is how every other process learns, within one cache TTL, that the
token it holds is no longer the current one (``keyhole.oauth.refresh``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.connections.models import Connection
from keyhole.oauth.models import TOKENS_ACTIVE, TOKENS_REAUTHORIZE, OAuthFlow, OAuthTokens
from keyhole.oauth.token_endpoint import TokenSet
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.vault import Vault
from keyhole.vault.rotation import row_aad


@dataclass(frozen=True, slots=True)
class StoredTokens:
    version: int
    state: str
    error: str | None
    tokens: TokenSet | None
    # The target the tokens were granted for (keyhole.connections.binding.binding_digest); None for
    # tokens stored before targets were recorded.
    binding: str | None = None


class TokenStore:
    def __init__(self, database: Database, vault: Vault) -> None:
        self._db = database
        self._vault = vault

    @staticmethod
    def _aad(connection_id: str) -> str:
        return row_aad(OAuthTokens.__tablename__, connection_id, "tokens")

    async def ensure(self, organization_id: str, connection_id: str) -> None:
        """Create the (empty) row if missing, so the database lock has something to lease."""
        async with self._db.session() as session:
            if await session.get(OAuthTokens, connection_id) is not None:
                return
        try:
            async with self._db.transaction() as session:
                session.add(
                    OAuthTokens(
                        id=connection_id,
                        organization_id=organization_id,
                        version=0,
                        state=TOKENS_ACTIVE,
                        updated_at=utcnow(),
                    )
                )
        except IntegrityError:
            pass  # another process created it first

    async def read(self, connection_id: str) -> StoredTokens | None:
        async with self._db.session() as session:
            row = await session.get(OAuthTokens, connection_id)
        if row is None:
            return None
        tokens = None
        binding = None
        if row.tokens is not None:
            secret: dict[str, Any] = dict(self._vault.decrypt_json(row.tokens, self._aad(connection_id)))
            tokens = TokenSet(
                access_token=str(secret["access_token"]),
                refresh_token=secret.get("refresh_token"),
                expires_at=row.expires_at,
            )
            binding = secret.get("binding")
        return StoredTokens(row.version, row.state, row.error, tokens, binding)

    async def save(self, organization_id: str, connection_id: str, tokens: TokenSet, *, binding: str) -> int:
        """Store new tokens (access and refresh in one write), bound to the target they were granted
        for, and mark the connection healthy. Returns the new version."""
        await self.ensure(organization_id, connection_id)
        ciphertext = self._vault.encrypt_json(
            {**tokens.as_secret(), "binding": binding}, self._aad(connection_id)
        )
        async with self._db.transaction() as session:
            row = await session.get(OAuthTokens, connection_id, with_for_update=True)
            assert row is not None
            row.tokens = ciphertext
            row.expires_at = tokens.expires_at
            row.version = row.version + 1
            row.state = TOKENS_ACTIVE
            row.error = None
            row.updated_at = utcnow()
            version = row.version
            await session.execute(
                update(Connection)
                .where(Connection.id == connection_id)
                .values(
                    status="healthy", status_error=None, account_status="ACTIVE", account_status_reason=None
                )
            )
        return version

    async def mark_reauthorization(self, organization_id: str, connection_id: str, reason: str) -> None:
        """The grant is dead: forget the tokens, and say why on the connection and the account."""
        await self.ensure(organization_id, connection_id)
        async with self._db.transaction() as session:
            row = await session.get(OAuthTokens, connection_id, with_for_update=True)
            assert row is not None
            row.tokens = None
            row.expires_at = None
            row.version = row.version + 1
            row.state = TOKENS_REAUTHORIZE
            row.error = reason
            row.updated_at = utcnow()
            await session.execute(
                update(Connection)
                .where(Connection.id == connection_id)
                .values(
                    status="unhealthy",
                    status_error=reason,
                    account_status="EXPIRED",
                    account_status_reason=reason,
                )
            )

    @staticmethod
    async def discard_for_new_target(session: AsyncSession, connection_id: str) -> None:
        """The connection's target changed (in ``session``'s transaction): its tokens and its
        pending connect flows were granted for the old one and go with it. Tokens carry their
        target's fingerprint too, but tokens stored before they did would not know theirs."""
        await session.execute(
            update(OAuthTokens)
            .where(OAuthTokens.id == connection_id)
            .values(tokens=None, expires_at=None, version=OAuthTokens.version + 1, updated_at=utcnow())
        )
        await session.execute(
            delete(OAuthFlow).where(OAuthFlow.connection_id == connection_id, OAuthFlow.used_at.is_(None))
        )

    @staticmethod
    def fresh(expires_at: datetime | None, margin_seconds: float) -> bool:
        if expires_at is None:
            return True  # no expiry announced: used until the upstream answers 401
        return (expires_at - utcnow()).total_seconds() > margin_seconds
