"""Auth configs: create, list, read, update, enable/disable and delete, per organization."""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.authconfigs.models import AuthConfig
from keyhole.authconfigs.repository import AuthConfigRepository
from keyhole.connections.binding import check_shared_target
from keyhole.connections.catalog import Catalog
from keyhole.connections.composio_mapping import check_scheme, fixed_base_url, is_toolkit
from keyhole.connections.repository import ConnectionRepository
from keyhole.errors import InvalidRequest, NotFound
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.tenancy.principal import Principal
from keyhole.vault import Vault, VaultError
from keyhole.vault.rotation import row_aad
from keyhole.vault.scrub import REDACTED

# Credential keys shown in clear: they configure, they do not authenticate.
PUBLIC_CREDENTIALS = frozenset(
    {"scopes", "user_scopes", "client_id", "base_url", "api_key_header", "api_key_query"}
)
_ALPHABET = string.ascii_letters + string.digits


def new_public_id(prefix: str, length: int = 16) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(frozen=True, slots=True)
class AuthConfigInput:
    toolkit_slug: str
    auth_scheme: str
    name: str | None = None
    credentials: Mapping[str, Any] = field(default_factory=dict)
    tool_router_enabled: bool = True
    tool_access_config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuthConfigChange:
    name: str | None = None
    credentials: Mapping[str, Any] | None = None  # merged; "[REDACTED]" keeps, null removes
    tool_router_enabled: bool | None = None
    tool_access_config: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuthConfigView:
    id: str
    organization_id: str
    toolkit_slug: str
    name: str
    auth_scheme: str
    credentials: dict[str, Any]  # secret values redacted
    enabled: bool
    tool_router_enabled: bool
    tool_access_config: dict[str, Any]
    connections: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    items: list[AuthConfigView]
    total: int


def _not_found(config_id: str) -> NotFound:
    return NotFound("auth config not found", key="AuthConfig_NotFound", metadata={"id": config_id[:64]})


def redact_credentials(credentials: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: value if name in PUBLIC_CREDENTIALS or value is None else REDACTED
        for name, value in credentials.items()
    }


class AuthConfigService:
    def __init__(self, database: Database, vault: Vault, catalog: Catalog) -> None:
        self._db = database
        self._rows = AuthConfigRepository(database)
        self._connections = ConnectionRepository(database)
        self._vault = vault
        self._catalog = catalog

    async def create(self, principal: Principal, data: AuthConfigInput) -> AuthConfigView:
        connection_type = self._catalog.get(data.toolkit_slug)
        if not is_toolkit(connection_type):
            raise InvalidRequest(
                f"{connection_type.id} is a database type, not a toolkit", key="Toolkit_NotFound"
            )
        check_scheme(connection_type, data.auth_scheme)
        now = utcnow()
        row = AuthConfig(
            id=new_public_id("ac_"),
            organization_id=principal.organization_id,
            toolkit_slug=connection_type.id,
            name=data.name or f"{connection_type.name} auth config",
            auth_scheme=data.auth_scheme,
            enabled=True,
            tool_router_enabled=data.tool_router_enabled,
            tool_access_config=dict(data.tool_access_config),
            created_by=principal.id,
            created_at=now,
            updated_at=now,
        )
        self._store_credentials(row, dict(data.credentials))
        await self._rows.add(row)
        return self._view(row, 0)

    async def page(
        self,
        principal: Principal,
        *,
        toolkit_slugs: Sequence[str] = (),
        show_disabled: bool = True,
        search: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page:
        async with self._db.session() as session:
            rows, total = await self._rows.page(
                session,
                principal.organization_id,
                toolkit_slugs=toolkit_slugs,
                show_disabled=show_disabled,
                search=search,
                offset=offset,
                limit=limit,
            )
            counts = await self._counts(session, principal.organization_id, [row.id for row in rows])
        return Page([self._view(row, counts.get(row.id, 0)) for row in rows], total)

    async def get(self, principal: Principal, config_id: str) -> AuthConfigView:
        async with self._db.session() as session:
            row = await self._row(session, principal.organization_id, config_id)
            counts = await self._counts(session, principal.organization_id, [row.id])
        return self._view(row, counts.get(row.id, 0))

    async def credentials(
        self, principal: Principal, config_id: str
    ) -> tuple[AuthConfigView, dict[str, Any]]:
        """The view and the decrypted credentials, for core services that apply them."""
        async with self._db.session() as session:
            row = await self._row(session, principal.organization_id, config_id)
        return self._view(row, 0), self._secrets(row)

    async def update(self, principal: Principal, config_id: str, change: AuthConfigChange) -> AuthConfigView:
        async with self._db.transaction() as session:
            row = await self._row(session, principal.organization_id, config_id)
            if change.name is not None:
                row.name = change.name
            if change.credentials is not None:
                merged = self._secrets(row)
                check_shared_target(
                    merged,
                    change.credentials,
                    public_keys=PUBLIC_CREDENTIALS,
                    fixed_base_url=fixed_base_url(self._catalog.get(row.toolkit_slug)) is not None,
                    require_named=False,
                )
                for name, value in change.credentials.items():
                    if value is None:
                        merged.pop(name, None)
                    elif value != REDACTED:
                        merged[name] = value
                self._store_credentials(row, merged)
            if change.tool_router_enabled is not None:
                row.tool_router_enabled = change.tool_router_enabled
            if change.tool_access_config is not None:
                row.tool_access_config = dict(change.tool_access_config)
            row.updated_at = utcnow()
            counts = await self._counts(session, principal.organization_id, [row.id])
        return self._view(row, counts.get(row.id, 0))

    async def set_enabled(self, principal: Principal, config_id: str, enabled: bool) -> AuthConfigView:
        async with self._db.transaction() as session:
            row = await self._row(session, principal.organization_id, config_id)
            row.enabled = enabled
            row.updated_at = utcnow()
        return self._view(row, 0)

    async def delete(self, principal: Principal, config_id: str) -> None:
        """Connected accounts created from it keep working: their credential is their own."""
        async with self._db.transaction() as session:
            row = await self._row(session, principal.organization_id, config_id)
            await self._rows.delete(session, row)

    # -- helpers -----------------------------------------------------------------------------

    async def _row(self, session: AsyncSession, organization_id: str, config_id: str) -> AuthConfig:
        row = await self._rows.get(session, organization_id, config_id)
        if row is None:
            raise _not_found(config_id)
        return row

    async def _counts(self, session: AsyncSession, organization_id: str, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        return await self._connections.count_by_auth_config(session, organization_id, ids)

    def _store_credentials(self, row: AuthConfig, credentials: dict[str, Any]) -> None:
        row.credentials = (
            self._vault.encrypt_json(credentials, row_aad(AuthConfig.__tablename__, row.id, "credentials"))
            if credentials
            else None
        )

    def _secrets(self, row: AuthConfig) -> dict[str, Any]:
        if row.credentials is None:
            return {}
        value = self._vault.decrypt_json(
            row.credentials, row_aad(AuthConfig.__tablename__, row.id, "credentials")
        )
        return dict(value)

    def _shown_credentials(self, row: AuthConfig) -> dict[str, Any]:
        try:
            return redact_credentials(self._secrets(row))
        except VaultError as error:  # one unreadable row must not fail a list
            return {"unreadable": error.message}

    def _view(self, row: AuthConfig, connections: int) -> AuthConfigView:
        return AuthConfigView(
            id=row.id,
            organization_id=row.organization_id,
            toolkit_slug=row.toolkit_slug,
            name=row.name,
            auth_scheme=row.auth_scheme,
            credentials=self._shown_credentials(row),
            enabled=row.enabled,
            tool_router_enabled=row.tool_router_enabled,
            tool_access_config=dict(row.tool_access_config or {}),
            connections=connections,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
