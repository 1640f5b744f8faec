"""Connected accounts: the Composio view of connections (same rows, same ids).

An account adds an owner (``user_id``), an alias, a status and an auth config to a connection.
Connections created through the Polytomic dialect are accounts of the user ``default``, ACTIVE,
with no auth config. Disabling an account disables the connection's proxy, in both dialects.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from keyhole.authconfigs.service import PUBLIC_CREDENTIALS, AuthConfigService
from keyhole.cache import TtlCache
from keyhole.connections.binding import check_shared_target
from keyhole.connections.catalog import Catalog
from keyhole.connections.composio_mapping import (
    CREDENTIAL_KEYS,
    account_val,
    configuration_for,
    default_scheme,
    fixed_base_url,
    inline_target,
    is_toolkit,
)
from keyhole.connections.models import Connection
from keyhole.connections.repository import AccountQuery, ConnectionRepository
from keyhole.connections.schemas import UNREADABLE, ConnectionCreate, ConnectionUpdate, ConnectionView
from keyhole.connections.service import ConnectionService
from keyhole.connections.target import HttpTarget
from keyhole.errors import Conflict, InvalidRequest, NotFound
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.tenancy.principal import Principal

DEFAULT_USER_ID = "default"
ACTIVE = "ACTIVE"
FAILED = "FAILED"
AccountStatus = Literal["INITIALIZING", "INITIATED", "ACTIVE", "FAILED", "EXPIRED", "INACTIVE", "REVOKED"]
STATUSES: tuple[str, ...] = get_args(AccountStatus)


@dataclass(frozen=True, slots=True)
class InlineCredentials:
    """Credentials sent with one call instead of a stored account (``custom_connection_data``)."""

    toolkit: str
    auth_scheme: str
    val: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AccountView:
    id: str
    organization_id: str
    toolkit: str
    name: str
    user_id: str
    alias: str | None
    status: str
    status_reason: str | None
    disabled: bool
    auth_config_id: str | None
    auth_scheme: str
    val: dict[str, Any]  # credentials redacted
    created_at: datetime
    updated_at: datetime

    @property
    def usable(self) -> bool:
        return self.status == ACTIVE and not self.disabled


@dataclass(frozen=True, slots=True)
class AccountInput:
    auth_config_id: str
    user_id: str | None
    auth_scheme: str | None
    val: Mapping[str, Any]
    alias: str | None = None
    validate: bool = False


@dataclass(frozen=True, slots=True)
class AccountFilter:
    toolkits: Sequence[str] = ()
    statuses: Sequence[str] = ()
    user_ids: Sequence[str] = ()
    auth_config_ids: Sequence[str] = ()
    ids: Sequence[str] = ()
    order_by: str = "created_at"  # | "updated_at"
    descending: bool = True


@dataclass(frozen=True, slots=True)
class AccountPage:
    items: list[AccountView]
    total: int


@dataclass(frozen=True, slots=True)
class _Gate:
    user_id: str
    status: str


@dataclass
class AccountChange:
    alias: str | None = None
    auth_scheme: str | None = None
    val: Mapping[str, Any] | None = None  # merged into the stored val; null removes a field
    fields: set[str] = field(default_factory=set)  # which of the above were sent


def _not_found(account_id: str) -> NotFound:
    return NotFound(
        "connected account not found", key="ConnectedAccount_NotFound", metadata={"id": account_id[:64]}
    )


def _uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class AccountService:
    def __init__(
        self,
        database: Database,
        connections: ConnectionService,
        catalog: Catalog,
        auth_configs: AuthConfigService,
        *,
        cache_ttl_seconds: float = 1.0,
    ) -> None:
        self._db = database
        self._rows = ConnectionRepository(database)
        self._connections = connections
        self._catalog = catalog
        self._auth_configs = auth_configs
        self._gates: TtlCache[tuple[str, str], _Gate] = TtlCache(cache_ttl_seconds, max_entries=10_000)
        self._toolkits = [t.id for t in catalog.all() if is_toolkit(t)]

    # -- reads -------------------------------------------------------------------------------

    async def page(
        self, principal: Principal, where: AccountFilter, *, offset: int = 0, limit: int = 50
    ) -> AccountPage:
        query = AccountQuery(
            type_ids=[t for t in self._toolkits if not where.toolkits or t in where.toolkits],
            default_user_id=DEFAULT_USER_ID,
            default_status=ACTIVE,
            user_ids=where.user_ids,
            statuses=where.statuses,
            auth_config_ids=where.auth_config_ids,
            ids=[value for value in where.ids if _uuid(value)] if where.ids else None,
            by_updated_at=where.order_by == "updated_at",
            descending=where.descending,
        )
        rows, total = await self._rows.account_page(
            principal.organization_id, query, offset=offset, limit=limit
        )
        return AccountPage([self._view(row) for row in rows], total)

    async def get(self, principal: Principal, account_id: str) -> AccountView:
        return self._view(await self._row(principal.organization_id, account_id))

    async def usable(
        self, principal: Principal, user_id: str, toolkit: str, *, auth_config_id: str | None = None
    ) -> list[AccountView]:
        """The user's usable accounts of a toolkit, newest first."""
        where = AccountFilter(toolkits=[toolkit], user_ids=[user_id], statuses=[ACTIVE])
        if auth_config_id is not None:
            where = AccountFilter(
                toolkits=[toolkit], user_ids=[user_id], statuses=[ACTIVE], auth_config_ids=[auth_config_id]
            )
        page = await self.page(principal, where, limit=100)
        return [view for view in page.items if view.usable]

    async def target(
        self, principal: Principal, account_id: str, *, user_id: str | None = None
    ) -> HttpTarget:
        """The account's proxy target, once it is known to be usable by ``user_id`` (when given).

        Cached like the connection's target (``KEYHOLE_CACHE_TTL_SECONDS``), so the hot path does no
        database round trip once warm."""
        gate = await self._gate(principal.organization_id, account_id)
        if user_id is not None and user_id != gate.user_id:
            raise InvalidRequest(
                "the connected account belongs to another user_id; send the user_id that owns it, or "
                "leave user_id out",
                key="ActionExecute_ConnectedAccountEntityIdMismatch",
                metadata={"field": "user_id"},
            )
        if gate.status != ACTIVE:
            raise InvalidRequest(
                f"the connected account is {gate.status}, not ACTIVE; update its credentials first",
                key="ConnectedAccount_NotActive",
            )
        target = await self._connections.http_target(principal.organization_id, account_id)
        if not target.proxy_enabled:
            raise InvalidRequest(
                "the connected account is disabled; enable it with PATCH /connected_accounts/{id}/status",
                key="ConnectedAccount_Disabled",
            )
        return target

    def inline_target(self, principal: Principal, inline: InlineCredentials) -> HttpTarget:
        """An ephemeral target for credentials sent with the call; never stored."""
        if inline.toolkit not in self._catalog:
            raise InvalidRequest(
                f"unknown toolkit {inline.toolkit[:64]!r} in custom_connection_data.toolkitSlug",
                key="Toolkit_NotFound",
                metadata={"field": "custom_connection_data.toolkitSlug"},
            )
        connection_type = self._catalog.get(inline.toolkit)
        return inline_target(connection_type, principal.organization_id, inline.auth_scheme, inline.val)

    async def proxy_target(
        self,
        principal: Principal,
        *,
        account_id: str | None,
        user_id: str | None,
        inline: InlineCredentials | None,
    ) -> HttpTarget:
        """Whose credential a proxy call uses: one stored account (usable by ``user_id`` when
        given) or credentials sent inline, never both and never neither."""
        if account_id is not None and inline is not None:
            raise InvalidRequest(
                "send either connected_account_id or custom_connection_data, not both",
                key="validation_error",
                metadata={
                    "errors": [
                        {"field": "custom_connection_data", "message": "exclusive with connected_account_id"}
                    ]
                },
            )
        if account_id is not None:
            return await self.target(principal, account_id, user_id=user_id)
        if inline is not None:
            return self.inline_target(principal, inline)
        raise InvalidRequest(
            "no auth context: send connected_account_id (or custom_connection_data) to say whose "
            "credential the call uses",
            key="MissingAuthContext",
            metadata={"field": "connected_account_id"},
        )

    # -- writes ------------------------------------------------------------------------------

    async def create(self, principal: Principal, data: AccountInput) -> AccountView:
        """Store an account from a state that carries its credential (``val``, ACTIVE or without a
        status): Keyhole has no hosted sign-in flow to finish any other state."""
        status = data.val.get("status", ACTIVE)
        if status != ACTIVE:
            raise InvalidRequest(
                f"connection.state.val.status {str(status)[:16]!r} is not supported: Keyhole has no "
                "hosted sign-in flow; send an ACTIVE state that carries the credential",
                key="ConnectedAccount_BadRequest",
                metadata={"field": "connection.state.val.status"},
            )
        credentials = {name: value for name, value in data.val.items() if name != "status"}
        config, defaults = await self._auth_configs.credentials(principal, data.auth_config_id)
        if not config.enabled:
            raise InvalidRequest(
                "the auth config is disabled; enable it before connecting accounts",
                key="AuthConfig_Disabled",
            )
        scheme = data.auth_scheme or config.auth_scheme
        if scheme != config.auth_scheme:
            raise InvalidRequest(
                f"state.authScheme {scheme[:32]} does not match the auth config's {config.auth_scheme}",
                key="invalid_connection_data",
                metadata={"field": "connection.state.authScheme"},
            )
        user_id = data.user_id or DEFAULT_USER_ID
        connection_type = self._catalog.get(config.toolkit_slug)
        await self._check_alias(principal, user_id, connection_type.id, data.alias, None)
        check_shared_target(
            defaults,
            credentials,
            public_keys=PUBLIC_CREDENTIALS,
            fixed_base_url=fixed_base_url(connection_type) is not None,
            require_named=True,
            used=CREDENTIAL_KEYS,
        )
        val = {**defaults, **credentials}
        configuration = configuration_for(connection_type, scheme, val)
        view = await self._connections.create(
            principal,
            ConnectionCreate(
                name=data.alias or f"{connection_type.name} ({user_id})"[:200],
                type_id=connection_type.id,
                configuration=configuration,
                validate=data.validate,
            ),
            account={
                "account_user_id": user_id,
                "account_alias": data.alias,
                "account_status": ACTIVE,
                "auth_config_id": config.id,
                "auth_scheme": scheme,
            },
        )
        return await self.get(principal, view.id)

    async def update(self, principal: Principal, account_id: str, change: AccountChange) -> AccountView:
        row = await self._row(principal.organization_id, account_id)
        view = self._view(row)
        if "alias" in change.fields:
            await self._check_alias(principal, view.user_id, view.toolkit, change.alias, account_id)
        if "val" in change.fields and change.val is not None:
            scheme = change.auth_scheme or view.auth_scheme
            # Merged over the redacted view: a credential the caller does not resend stays a
            # placeholder, so the connection service sees it as kept and binds it to its target.
            current = self._connections.view(row).configuration
            connection_type = self._catalog.get(row.type_id)
            merged = account_val(connection_type, view.auth_scheme, current)
            for name, value in change.val.items():
                if value is None:
                    merged.pop(name, None)
                elif name != "status":
                    merged[name] = value
            configuration = configuration_for(connection_type, scheme, merged, existing=current)
            await self._connections.update(
                principal,
                account_id,
                ConnectionUpdate(name=row.name, configuration=configuration, validate=False),
            )
            await self._set(principal, account_id, auth_scheme=scheme, account_status=ACTIVE)
        if "alias" in change.fields:
            await self._set(principal, account_id, account_alias=change.alias)
        return await self.get(principal, account_id)

    async def set_enabled(self, principal: Principal, account_id: str, enabled: bool) -> AccountView:
        await self._row(principal.organization_id, account_id)  # 404 for databases and foreign ids
        await self._connections.set_proxy_enabled(principal, account_id, enabled)
        await self._set(
            principal, account_id, account_status_reason=None if enabled else "disabled by the user"
        )
        return await self.get(principal, account_id)

    async def delete(self, principal: Principal, account_id: str) -> None:
        await self._row(principal.organization_id, account_id)
        await self._connections.delete(principal, account_id)
        self._gates.evict((principal.organization_id, account_id))

    # -- helpers -----------------------------------------------------------------------------

    async def _check_alias(
        self, principal: Principal, user_id: str, toolkit: str, alias: str | None, account_id: str | None
    ) -> None:
        if not alias:
            return
        if await self._rows.alias_taken(
            principal.organization_id,
            type_id=toolkit,
            user_id=user_id,
            default_user_id=DEFAULT_USER_ID,
            alias=alias,
            other_than=account_id or "",
        ):
            raise Conflict(
                f"alias {alias[:64]!r} is already used by another {toolkit} account of this user",
                key="ConnectedAccount_AliasConflict",
                metadata={"field": "alias"},
            )

    async def _set(self, principal: Principal, account_id: str, **columns: Any) -> None:
        async with self._db.transaction() as session:
            row = await self._rows.get(principal.organization_id, account_id, session=session)
            if row is None:
                raise _not_found(account_id)
            for name, value in columns.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
        self._gates.evict((principal.organization_id, account_id))

    async def _row(self, organization_id: str, account_id: str) -> Connection:
        if not _uuid(account_id):
            raise _not_found(account_id)
        row = await self._rows.get(organization_id, account_id)
        if row is None or row.type_id not in self._toolkits:
            raise _not_found(account_id)
        return row

    async def _gate(self, organization_id: str, account_id: str) -> _Gate:
        return await self._gates.get(
            (organization_id, account_id), lambda: self._load_gate(organization_id, account_id)
        )

    async def _load_gate(self, organization_id: str, account_id: str) -> _Gate:
        row = await self._row(organization_id, account_id)
        return _Gate(row.account_user_id or DEFAULT_USER_ID, row.credential_row.account_status or ACTIVE)

    def _view(self, row: Connection) -> AccountView:
        connection: ConnectionView = self._connections.view(row)
        credential = row.credential_row
        scheme = credential.auth_scheme or default_scheme(connection.type, connection.configuration)
        status, reason = credential.account_status or ACTIVE, credential.account_status_reason
        if connection.status == UNREADABLE:
            status, reason = FAILED, connection.status_error
        return AccountView(
            id=row.id,
            organization_id=row.organization_id,
            toolkit=row.type_id,
            name=row.name,
            user_id=row.account_user_id or DEFAULT_USER_ID,
            alias=row.account_alias,
            status=status,
            status_reason=reason,
            disabled=not connection.proxy_enabled,
            auth_config_id=row.auth_config_id,
            auth_scheme=scheme,
            val=account_val(connection.type, scheme, connection.configuration),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
