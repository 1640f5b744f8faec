"""Connection lifecycle: validate against the type, probe through egress, encrypt secrets, redact."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yarl
from sqlalchemy.ext.asyncio import AsyncSession

from keyhole.cache import TtlCache
from keyhole.connections.binding import (
    kept_secrets,
    require_secrets_for_new_target,
    secret_required,
    target_identity,
)
from keyhole.connections.catalog import Catalog, ConnectionType
from keyhole.connections.health import Health, probe
from keyhole.connections.models import Connection
from keyhole.connections.repository import ConnectionRepository
from keyhole.connections.schemas import (
    UNREADABLE,
    ConnectionCreate,
    ConnectionLabel,
    ConnectionPage,
    ConnectionSummary,
    ConnectionTest,
    ConnectionUpdate,
    ConnectionView,
    ParameterValue,
    ParameterValues,
)
from keyhole.connections.secrets import join_secrets, keep_redacted, keep_unchanged, redact, split_secrets
from keyhole.connections.target import HttpTarget, build_http_target, preview_target
from keyhole.databases.connectivity import list_databases
from keyhole.egress import EgressClient
from keyhole.errors import (
    CORE_FIELD_NAMES,
    CallField,
    Forbidden,
    InvalidRequest,
    KeyholeError,
    NotFound,
    Unprocessable,
)
from keyhole.http_paths import check_path
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.tenancy.principal import Principal
from keyhole.vault import Vault, VaultError
from keyhole.vault.rotation import row_aad

# A health check path follows the proxy-call path rules; its errors name the configuration field.
_HEALTHCHECK_FIELDS = {**CORE_FIELD_NAMES, CallField.PATH: "healthcheck_path"}


def _oauth_health(configuration: Mapping[str, Any]) -> Health | None:
    """OAuth2 connections are not probed on save: an authorization-code one waits for the connect
    flow (unhealthy until then), a client-credentials one fetches its token on first use."""
    auth = configuration.get("auth")
    if not isinstance(auth, Mapping) or auth.get("type") != "oauth2":
        return None
    if auth.get("grant") == "client_credentials":
        return Health("healthy")
    return Health("unhealthy", "awaiting authorization: start the connect flow to authorize this connection")


def connection_not_found(connection_id: str) -> NotFound:
    return NotFound("connection not found", metadata={"id": connection_id[:64]})


def _shared_read_only(message: str, parent_connection_id: str) -> Forbidden:
    return Forbidden(
        f"{message}; only the organization of the parent connection can change it",
        key="shared_connection_read_only",
        metadata={"parent_connection_id": parent_connection_id},
    )


class ConnectionService:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        catalog: Catalog,
        egress: EgressClient,
        *,
        file_root: Path,
        cache_ttl_seconds: float = 1.0,
    ) -> None:
        self._db = database
        self._rows = ConnectionRepository(database)
        self._vault = vault
        self.catalog = catalog
        self._egress = egress
        self._file_root = file_root
        self._targets: TtlCache[tuple[str, str], HttpTarget] = TtlCache(cache_ttl_seconds)
        self._listeners: list[Callable[[str, str], None]] = []
        self._retarget_hooks: list[Callable[[AsyncSession, str], Awaitable[None]]] = []

    # -- reads -------------------------------------------------------------------------------

    async def list(self, principal: Principal) -> list[ConnectionView]:
        return [self.view(row) for row in await self._rows.get_all(principal.organization_id)]

    async def page(
        self,
        principal: Principal,
        *,
        type_id: str | None = None,
        name_part: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> ConnectionPage:
        """A page of the organization's connections by name, opening no secret (a list of
        thousands reads only the rows it shows)."""
        rows, total = await self._rows.page_by_name(
            principal.organization_id, type_id=type_id, name_part=name_part, offset=offset, limit=limit
        )
        return ConnectionPage([self._summary(row) for row in rows], total)

    async def labels(self, principal: Principal) -> tuple[ConnectionLabel, ...]:
        """Every connection of the organization by name, with its type: what a picker lists and
        a log is labelled with, read without loading a configuration."""
        return tuple(
            ConnectionLabel(connection_id, name, self.catalog.get(type_id))
            for connection_id, name, type_id in await self._rows.labels(principal.organization_id)
        )

    async def get(self, principal: Principal, connection_id: str) -> ConnectionView:
        return self.view(await self.row(principal.organization_id, connection_id))

    async def full_configuration(
        self, organization_id: str, connection_id: str
    ) -> tuple[ConnectionType, dict[str, Any]]:
        """The decrypted configuration by organization id (OAuth refreshes run without a principal)."""
        row = await self.row(organization_id, connection_id)
        return self.catalog.get(row.type_id), self._full_configuration(row)

    async def configuration_to_authorize(
        self, organization_id: str, connection_id: str
    ) -> tuple[ConnectionType, dict[str, Any]]:
        """The decrypted configuration of a connection a connect flow is about to authorize; a
        shared copy is refused, as its authorization (like its credential) is its parent's."""
        row = await self.row(organization_id, connection_id)
        if row.parent_connection_id is not None:
            raise _shared_read_only(
                "a shared connection uses its parent connection's authorization", row.parent_connection_id
            )
        return self.catalog.get(row.type_id), self._full_configuration(row)

    async def configuration(
        self, principal: Principal, connection_id: str
    ) -> tuple[ConnectionType, dict[str, Any]]:
        """The decrypted configuration, for core services that must use the credential."""
        row = await self.row(principal.organization_id, connection_id)
        return self.catalog.get(row.type_id), self._full_configuration(row)

    async def http_target(self, organization_id: str, connection_id: str) -> HttpTarget:
        return await self._targets.get(
            (organization_id, connection_id), lambda: self._load_target(organization_id, connection_id)
        )

    async def _load_target(self, organization_id: str, connection_id: str) -> HttpTarget:
        row = await self.row(organization_id, connection_id)
        credential = row.credential_row
        connection_type = self.catalog.get(row.type_id)
        if connection_type.http is None:
            raise InvalidRequest(
                f"connection {connection_id} is a {connection_type.id} database; the proxy serves HTTP "
                "connections only (use the query runner)",
                key="proxy_not_supported",
            )
        return build_http_target(
            connection_id=row.id,
            organization_id=row.organization_id,
            proxy_enabled=credential.proxy_enabled,
            connection_type=connection_type,
            configuration=self._full_configuration(row),
            version=credential.version,
            parent_connection_id=row.parent_connection_id,
            parent_organization_id=None if credential is row else credential.organization_id,
        )

    # -- writes ------------------------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        data: ConnectionCreate,
        *,
        account: Mapping[str, Any] | None = None,
    ) -> ConnectionView:
        """``account`` sets the Composio view's columns (``account_user_id``…) in the same insert."""
        connection_type = self.catalog.get(data.type_id)
        configuration = self._validated(connection_type, data.configuration)
        health = _oauth_health(configuration)  # OAuth2 tokens come later (connect flow / first call)
        if health is None:
            health = await self._check(connection_type, configuration) if data.validate else Health("healthy")
        elif data.validate:
            await self._check_oauth_endpoints(configuration)
        row = Connection(
            id=str(uuid.uuid4()),
            organization_id=principal.organization_id,
            type_id=connection_type.id,
            name=data.name,
            healthcheck_interval=data.healthcheck_interval,
            policies=list(data.policies),
            created_by=principal.id,
            updated_by=principal.id,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        self._store_configuration(row, connection_type, configuration, health)
        for column, value in (account or {}).items():
            setattr(row, column, value)
        await self._rows.add(row)
        return self.view(row)

    async def update(
        self, principal: Principal, connection_id: str, data: ConnectionUpdate
    ) -> ConnectionView:
        row = await self.row(principal.organization_id, connection_id)
        if row.parent_connection_id is not None:
            return await self._update_copy(principal, row, data)
        if data.type_id is not None and data.type_id != row.type_id:
            raise InvalidRequest(
                f"a connection's type cannot change (it is {row.type_id}); create a new connection",
                key="type_mismatch",
            )
        connection_type = self.catalog.get(row.type_id)
        stored_secrets = self._secrets(row)
        sent = keep_unchanged(data.configuration, stored_secrets, data.unchanged_secrets)
        merged = keep_redacted(sent, stored_secrets, connection_type.secret_fields)
        configuration = self._validated(connection_type, merged)
        stored = join_secrets(row.configuration, stored_secrets)
        kept = kept_secrets(sent, stored_secrets, merged_over_stored=False)
        require_secrets_for_new_target(connection_type, stored, configuration, kept)
        if (
            kept
            and self._scrubs(connection_type, stored)
            and not self._scrubs(connection_type, configuration)
        ):
            # Turning echo scrubbing off would let the upstream's echo show the kept secret.
            raise secret_required(["/proxy/scrub_echoed_secrets"], kept)
        before, after = (target_identity(connection_type, c) for c in (stored, configuration))
        retargeted = before != after
        health = _oauth_health(configuration)
        if health is not None:
            # Tokens are bound to the target they were granted for (keyhole.oauth), so a new target
            # waits for a new authorization; an unchanged one keeps its state.
            health = health if retargeted else None
            if data.validate:
                await self._check_oauth_endpoints(configuration)
        elif data.validate:
            health = await self._check(connection_type, configuration)
        async with self._db.transaction() as session:
            row = await self.row(principal.organization_id, connection_id, session=session)
            _apply_own_settings(row, principal, data)
            self._store_configuration(row, connection_type, configuration, health)
            if retargeted:
                for hook in self._retarget_hooks:
                    await hook(session, connection_id)
            copies = await self._rows.copy_keys(session, connection_id)
        self._invalidate_with_copies(principal.organization_id, connection_id, copies)
        return self.view(row)

    async def _update_copy(
        self, principal: Principal, row: Connection, data: ConnectionUpdate
    ) -> ConnectionView:
        """A shared copy keeps its own name, health-check interval and policies; its type and
        configuration are its parent's, so the update must leave them as the copy shows them
        (or send ``{}``: a copy holds no configuration of its own)."""
        parent_id = str(row.parent_connection_id)
        if data.type_id is not None and data.type_id != row.type_id:
            raise _shared_read_only("the type of a shared connection is its parent connection's", parent_id)
        if data.configuration and data.configuration != self.view(row).configuration:
            raise _shared_read_only(
                "the configuration (target and credential) of a shared connection is its parent "
                "connection's; send it unchanged, as read, to change the copy's name, "
                "healthcheck_interval or policies",
                parent_id,
            )
        async with self._db.transaction() as session:
            row = await self.row(principal.organization_id, row.id, session=session)
            _apply_own_settings(row, principal, data)
        self.invalidate(principal.organization_id, row.id)
        return self.view(row)

    async def set_proxy_enabled(
        self, principal: Principal, connection_id: str, enabled: bool
    ) -> ConnectionView:
        async with self._db.transaction() as session:
            row = await self.row(principal.organization_id, connection_id, session=session)
            if row.parent_connection_id is not None:
                raise _shared_read_only(
                    "the proxy setting of a shared connection is stored on its parent connection",
                    row.parent_connection_id,
                )
            if enabled and self.catalog.get(row.type_id).http is None:
                raise InvalidRequest(
                    f"the proxy does not support {row.type_id} connections", key="proxy_not_supported"
                )
            row.proxy_enabled = enabled
            row.updated_at = utcnow()
            copies = await self._rows.copy_keys(session, connection_id)
        self._invalidate_with_copies(principal.organization_id, connection_id, copies)
        return self.view(row)

    async def delete(self, principal: Principal, connection_id: str, *, force: bool = False) -> None:
        async with self._db.transaction() as session:
            row = await self.row(principal.organization_id, connection_id, session=session)
            copies = await self._rows.copy_keys(session, connection_id)  # deleted with it
            await self._rows.delete(session, row)
        self._invalidate_with_copies(principal.organization_id, connection_id, copies)

    async def test(self, principal: Principal, data: ConnectionTest) -> Health:
        connection_type = self.catalog.get(data.type_id)
        configuration = dict(data.configuration)
        stored: dict[str, Any] = {}
        kept: list[str] = []
        if data.connection_id is not None:
            row = await self.row(principal.organization_id, data.connection_id)
            if row.type_id != connection_type.id:
                raise InvalidRequest(
                    f"connection {data.connection_id} is of type {row.type_id}, not {connection_type.id}",
                    key="type_mismatch",
                )
            credential = row.credential_row
            stored_secrets = self._secrets(credential)
            stored = join_secrets(credential.configuration, stored_secrets)
            kept = kept_secrets(data.configuration, stored_secrets, merged_over_stored=True)
            configuration = keep_redacted(
                {**stored, **configuration}, stored_secrets, connection_type.secret_fields
            )
        validated = self._validated(connection_type, configuration)
        require_secrets_for_new_target(connection_type, stored, validated, kept)
        try:
            health = await probe(connection_type, validated, egress=self._egress, file_root=self._file_root)
        except KeyholeError as exc:
            if isinstance(exc, Unprocessable):
                raise
            raise InvalidRequest(
                f"connection test failed: {exc.message}",
                key="connection_test_failed",
                metadata={"reason": exc.key},
            ) from None
        if health.status != "healthy":
            raise InvalidRequest(health.error or "connection test failed", key="connection_test_failed")
        return health

    async def parameter_values(
        self,
        principal: Principal,
        type_id: str,
        field: str | None,
        *,
        connection_id: str | None = None,
        parameters: dict[str, Any] | None = None,
        query: str | None = None,
    ) -> dict[str, ParameterValues]:
        connection_type = self.catalog.get(type_id)
        if connection_id is not None:
            row = await self.row(principal.organization_id, connection_id)
            if row.type_id != connection_type.id:
                raise InvalidRequest(
                    f"connection {connection_id} is of type {row.type_id}", key="type_mismatch"
                )
            credential = row.credential_row
            stored_secrets = self._secrets(credential)
            stored = join_secrets(credential.configuration, stored_secrets)
            configuration = keep_redacted(
                {**stored, **(parameters or {})}, stored_secrets, connection_type.secret_fields
            )
            require_secrets_for_new_target(
                connection_type,
                stored,
                configuration,
                kept_secrets(parameters, stored_secrets, merged_over_stored=True),
            )
        else:
            configuration = dict(parameters or {})
        supported = (
            ["database"]
            if connection_type.sql and connection_type.sql.dialect in {"postgresql", "mysql"}
            else []
        )
        wanted = supported if field is None else [field]
        for name in wanted:
            if name not in supported:
                raise InvalidRequest(
                    f"the {connection_type.id} type has no parameter values for field '{name[:64]}'",
                    key="no_parameter_values",
                )
        if not wanted:
            return {}
        dialect = connection_type.sql.dialect if connection_type.sql else ""
        try:
            names = await list_databases(dialect, configuration, resolver=self._egress.resolver)
        except KeyError as missing:
            raise InvalidRequest(f"parameters are missing {missing}", key="invalid_parameters") from None
        except KeyholeError as exc:
            if exc.status < 500:
                raise
            # Declared errors here are 400/404; a 5xx would also make clients retry blindly.
            raise InvalidRequest(
                f"could not list the values: {exc.message}",
                key="connection_unreachable",
                metadata={"reason": exc.key},
            ) from None
        needle = (query or "").lower()
        values = [ParameterValue(name, name) for name in names if needle in name.lower()]
        return {"database": ParameterValues(allows_creation=False, values=values)}

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _validated(connection_type: ConnectionType, configuration: dict[str, Any]) -> dict[str, Any]:
        """Schema validation, then the rules a schema cannot say (base URL shape, blocked headers)."""
        validated = connection_type.validate(configuration)
        if connection_type.http is not None:
            path = validated.get("healthcheck_path")
            try:
                if isinstance(path, str):  # proxy-call path rules: a health check stays under the base
                    check_path(path)
            except InvalidRequest as exc:
                exc.name_fields(_HEALTHCHECK_FIELDS)
                message = exc.message
                raise Unprocessable(
                    message,
                    key="invalid_configuration",
                    metadata={"errors": [{"field": "/healthcheck_path", "message": message}]},
                ) from None
            try:
                preview_target(connection_type, validated)
            except InvalidRequest as exc:
                raise Unprocessable(exc.message, key="invalid_configuration", metadata=exc.metadata) from None
        return validated

    async def _check(self, connection_type: ConnectionType, configuration: dict[str, Any]) -> Health:
        try:
            return await probe(connection_type, configuration, egress=self._egress, file_root=self._file_root)
        except KeyholeError as exc:
            if isinstance(exc, Unprocessable):
                raise
            raise Unprocessable(
                f"could not reach the connection's target: {exc.message}. Fix the configuration, "
                "or create it with validate=false to skip the check",
                key="connection_unreachable",
                metadata={"reason": exc.key},
            ) from None

    @staticmethod
    def _scrubs(connection_type: ConnectionType, configuration: Mapping[str, Any]) -> bool:
        if connection_type.http is None:
            return False
        return preview_target(connection_type, configuration).limits.scrub_echoed_secrets

    async def _check_oauth_endpoints(self, configuration: Mapping[str, Any]) -> None:
        """``validate`` for an OAuth2 connection: the token endpoint, the one Keyhole itself calls, must
        pass the egress policy now rather than at the first token fetch (nothing is sent to it here).
        The authorization URL is opened by the user's browser, never by Keyhole."""
        auth = configuration.get("auth")
        assert isinstance(auth, Mapping)
        try:
            await self._egress.addresses(yarl.URL(str(auth.get("token_url", ""))))
        except KeyholeError as exc:
            raise Unprocessable(
                f"the OAuth token_url cannot be used: {exc.message}. Fix the configuration, or save it "
                "with validate=false to skip the check",
                key="connection_unreachable",
                metadata={"field": "/auth/token_url", "reason": exc.key},
            ) from None

    async def row(
        self, organization_id: str, connection_id: str, *, session: AsyncSession | None = None
    ) -> Connection:
        """The organization's connection row (a shared copy's parent loaded with it), in
        ``session`` when given; 404 alike for a missing, foreign or malformed id."""
        try:
            uuid.UUID(connection_id)
        except ValueError:
            raise connection_not_found(connection_id) from None
        row = await self._rows.get(organization_id, connection_id, session=session)
        if row is None:
            raise connection_not_found(connection_id)
        return row

    def _store_configuration(
        self,
        row: Connection,
        connection_type: ConnectionType,
        configuration: dict[str, Any],
        health: Health | None,
    ) -> None:
        public, secrets = split_secrets(configuration, connection_type.secret_fields)
        row.configuration = public
        row.secrets = (
            self._vault.encrypt_json(secrets, row_aad(Connection.__tablename__, row.id, "secrets"))
            if secrets
            else None
        )
        if health is not None:
            row.status = health.status
            row.status_error = health.error

    def _secrets(self, row: Connection) -> dict[str, Any]:
        if row.secrets is None:
            return {}
        value = self._vault.decrypt_json(row.secrets, row_aad(Connection.__tablename__, row.id, "secrets"))
        return dict(value)

    def _full_configuration(self, row: Connection) -> dict[str, Any]:
        credential = row.credential_row
        return join_secrets(credential.configuration, self._secrets(credential))

    def view(self, row: Connection) -> ConnectionView:
        """The redacted view of a row (also of one another service of this domain has read); a
        shared copy shows its parent's configuration, status and proxy setting."""
        credential = row.credential_row
        status, status_error = credential.status, credential.status_error
        try:
            configuration = redact(credential.configuration, self._secrets(credential))
        except VaultError as error:
            # One row under a foreign key must not fail a whole list: it shows as unreadable.
            configuration = redact(credential.configuration, {})
            status, status_error = UNREADABLE, error.message
        return ConnectionView(
            id=row.id,
            organization_id=row.organization_id,
            name=row.name,
            type=self.catalog.get(row.type_id),
            configuration=configuration,
            status=status,
            status_error=status_error,
            proxy_enabled=credential.proxy_enabled,
            healthcheck_interval=row.healthcheck_interval,
            policies=list(row.policies or []),
            created_by=row.created_by,
            updated_by=row.updated_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            parent_connection_id=row.parent_connection_id,
        )

    def _summary(self, row: Connection) -> ConnectionSummary:
        credential = row.credential_row
        return ConnectionSummary(
            id=row.id,
            name=row.name,
            type=self.catalog.get(row.type_id),
            status=credential.status,
            status_error=credential.status_error,
            proxy_enabled=credential.proxy_enabled,
            updated_at=row.updated_at,
            parent_connection_id=row.parent_connection_id,
        )

    def invalidate(self, organization_id: str, connection_id: str) -> None:
        """Drop this process's cached target of the connection and of its shared copies (which
        are built from it), and tell the listeners (e.g. new OAuth tokens)."""
        self._targets.evict((organization_id, connection_id))
        self._targets.evict_where(lambda _, target: target.parent_connection_id == connection_id)
        self._tell_listeners(organization_id, connection_id)

    def _invalidate_with_copies(
        self, organization_id: str, connection_id: str, copies: Iterable[tuple[str, str]]
    ) -> None:
        """``invalidate`` the connection (its copies' targets go with it, in one pass over the
        cache), then tell the listeners of each ``(organization_id, id)`` of its shared copies too
        (a query runner's pool is keyed by the copy)."""
        self.invalidate(organization_id, connection_id)
        for key in copies:
            self._tell_listeners(*key)

    def _tell_listeners(self, organization_id: str, connection_id: str) -> None:
        for listener in self._listeners:
            listener(organization_id, connection_id)

    def forget_organization(self, organization_id: str) -> None:
        """Drop this process's cached targets of a deleted organization's connections and of
        copies others held of them."""
        self._targets.evict_where(
            lambda key, target: organization_id in (key[0], target.parent_organization_id)
        )

    def on_change(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(organization_id, connection_id)`` after a connection is updated or
        deleted through this process (e.g. the query runner disposes its database pool)."""
        self._listeners.append(listener)

    def on_retarget(self, hook: Callable[[AsyncSession, str], Awaitable[None]]) -> None:
        """Run ``hook(session, connection_id)`` in the transaction of an update that changes the
        connection's target, so that credentials kept outside its configuration (OAuth tokens,
        pending connect flows) never outlive the target they were granted for."""
        self._retarget_hooks.append(hook)


def _apply_own_settings(row: Connection, principal: Principal, data: ConnectionUpdate) -> None:
    """What an update changes on the row itself, a shared copy's included."""
    row.name = data.name
    if data.healthcheck_interval is not None:
        row.healthcheck_interval = data.healthcheck_interval
    if data.policies is not None:
        row.policies = list(data.policies)
    row.updated_by = principal.id
    row.updated_at = utcnow()
