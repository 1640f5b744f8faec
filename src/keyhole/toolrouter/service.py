"""Tool-router sessions: create, read, and pick the account a session's proxy call uses.

Account selection for ``toolkit`` in a session of ``user_id``:

1. the toolkit must pass the session's filter (``enable`` list, or not in the ``disable`` list);
2. an account pinned in ``connected_accounts[toolkit]`` (the first one) is used, and must still
   belong to ``user_id`` and be usable;
3. otherwise the user's usable accounts of that toolkit (restricted to ``auth_configs[toolkit]``
   when set), newest first: none is a 400, several with ``require_explicit_selection`` a 400,
   else the newest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyhole.accounts.service import ACTIVE, AccountFilter, AccountService, InlineCredentials
from keyhole.authconfigs.service import AuthConfigService, new_public_id
from keyhole.connections.catalog import Catalog
from keyhole.connections.composio_mapping import is_toolkit
from keyhole.connections.target import HttpTarget
from keyhole.errors import InvalidRequest, KeyholeError, NotFound
from keyhole.store.base import utcnow
from keyhole.store.database import Database
from keyhole.tenancy.principal import Principal
from keyhole.toolrouter.models import ToolRouterSession
from keyhole.toolrouter.repository import SessionRepository


@dataclass(frozen=True, slots=True)
class SessionInput:
    user_id: str
    toolkits_mode: str | None = None  # "enable" | "disable" | None (every toolkit)
    toolkits: Sequence[str] = ()
    auth_configs: Mapping[str, str] = field(default_factory=dict)
    connected_accounts: Mapping[str, Sequence[str]] = field(default_factory=dict)
    require_explicit_selection: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # echoed back, not interpreted


@dataclass(frozen=True, slots=True)
class Reach:
    """A toolkit a session may call: the target its proxy calls would use, or why none can."""

    toolkit: str
    target: HttpTarget | None
    problem: KeyholeError | None


# At most this many of the user's accounts are looked at to find the toolkits a session reaches.
MAX_REACHABLE_ACCOUNTS = 100


@dataclass(frozen=True, slots=True)
class SessionView:
    id: str
    organization_id: str
    user_id: str
    toolkits_mode: str | None
    toolkits: list[str]
    auth_configs: dict[str, str]
    connected_accounts: dict[str, list[str]]
    require_explicit_selection: bool
    options: dict[str, Any]
    config_version: int
    created_at: datetime


def _invalid(message: str, key: str, field: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, key=key, metadata={"field": field} if field else {})


class SessionService:
    def __init__(
        self, database: Database, accounts: AccountService, auth_configs: AuthConfigService, catalog: Catalog
    ) -> None:
        self._rows = SessionRepository(database)
        self._accounts = accounts
        self._auth_configs = auth_configs
        self._catalog = catalog

    async def create(self, principal: Principal, data: SessionInput) -> SessionView:
        for slug in data.toolkits:
            self._toolkit(slug, "toolkits")
        for slug, config_id in data.auth_configs.items():
            self._toolkit(slug, f"auth_configs.{slug}")
            try:
                config = await self._auth_configs.get(principal, config_id)
            except NotFound:
                raise _invalid(
                    f"auth config {config_id[:64]} does not exist",
                    "ToolRouter_InvalidAuthConfig",
                    "auth_configs",
                ) from None
            if config.toolkit_slug != slug:
                raise _invalid(
                    f"auth config {config_id[:64]} is for {config.toolkit_slug}, not {slug[:64]}",
                    "ToolRouter_InvalidAuthConfig",
                    f"auth_configs.{slug}",
                )
        for slug, ids in data.connected_accounts.items():
            self._toolkit(slug, f"connected_accounts.{slug}")
            for account_id in ids:
                await self._pinned(principal, data.user_id, slug, account_id)
        row = ToolRouterSession(
            id=new_public_id("trs_", 20),
            organization_id=principal.organization_id,
            user_id=data.user_id,
            config={
                "toolkits_mode": data.toolkits_mode,
                "toolkits": list(data.toolkits),
                "auth_configs": dict(data.auth_configs),
                "connected_accounts": {slug: list(ids) for slug, ids in data.connected_accounts.items()},
                "require_explicit_selection": data.require_explicit_selection,
                "options": dict(data.options),
            },
            config_version=1,
            created_by=principal.id,
            created_at=utcnow(),
        )
        await self._rows.add(row)
        return _view(row)

    async def get(self, principal: Principal, session_id: str) -> SessionView:
        row = await self._rows.get(principal.organization_id, session_id)
        if row is None:
            raise NotFound("tool router session not found", key="ToolRouter_SessionNotFound")
        return _view(row)

    async def target(self, principal: Principal, session: SessionView, toolkit: str) -> HttpTarget:
        self.check_toolkit(session, toolkit)
        pinned = session.connected_accounts.get(toolkit)
        if pinned:
            return await self._accounts.target(principal, pinned[0], user_id=session.user_id)
        candidates = await self._accounts.usable(
            principal, session.user_id, toolkit, auth_config_id=session.auth_configs.get(toolkit)
        )
        if not candidates:
            raise _invalid(
                f"No connected account found for this user and toolkit ({toolkit[:64]}): connect one for "
                f"user_id {session.user_id[:64]!r}, or pin one with connected_accounts",
                "ConnectedAccount_NotFoundForUser",
            )
        if len(candidates) > 1 and session.require_explicit_selection:
            raise _invalid(
                f"the user has {len(candidates)} {toolkit[:64]} accounts and the session requires an "
                "explicit selection; pin one with connected_accounts",
                "ToolRouter_MultipleConnectedAccounts",
            )
        return await self._accounts.target(principal, candidates[0].id, user_id=session.user_id)

    async def reachable(self, principal: Principal, session: SessionView) -> list[Reach]:
        """The toolkits ``session`` may call, by slug, each with the account ``target`` would pick
        (or the refusal a call would get): the enabled toolkits, or, without an enable list, the
        toolkits of the user's usable accounts and of the session's pins, less the disabled."""
        if session.toolkits_mode == "enable":
            toolkits = set(session.toolkits)
        else:
            page = await self._accounts.page(
                principal,
                AccountFilter(user_ids=[session.user_id], statuses=[ACTIVE]),
                limit=MAX_REACHABLE_ACCOUNTS,
            )
            toolkits = {view.toolkit for view in page.items if view.usable}
            toolkits |= set(session.connected_accounts) | set(session.auth_configs)
        reached: list[Reach] = []
        for toolkit in sorted(toolkits):
            try:
                self.check_toolkit(session, toolkit)
            except InvalidRequest:
                continue
            try:
                reached.append(Reach(toolkit, await self.target(principal, session, toolkit), None))
            except KeyholeError as problem:
                reached.append(Reach(toolkit, None, problem))
        return reached

    async def proxy_target(
        self, principal: Principal, session: SessionView, toolkit: str, inline: InlineCredentials | None
    ) -> HttpTarget:
        """The target of a session's proxy call: the account the session picks for ``toolkit``, or
        credentials sent inline for that same toolkit (still subject to the session's filter)."""
        if inline is None:
            return await self.target(principal, session, toolkit)
        self.check_toolkit(session, toolkit)
        if inline.toolkit != toolkit:
            raise InvalidRequest(
                "custom_connection_data.toolkitSlug must equal toolkit_slug",
                key="validation_error",
                metadata={"errors": [{"field": "custom_connection_data.toolkitSlug", "message": "mismatch"}]},
            )
        return self._accounts.inline_target(principal, inline)

    def check_toolkit(self, session: SessionView, toolkit: str) -> None:
        excluded = (session.toolkits_mode == "enable" and toolkit not in session.toolkits) or (
            session.toolkits_mode == "disable" and toolkit in session.toolkits
        )
        if excluded:
            raise _invalid(
                f"toolkit {toolkit[:64]} is not enabled in this session",
                "ToolRouter_ToolkitNotEnabled",
                "toolkit_slug",
            )
        self._toolkit(toolkit, "toolkit_slug")

    def _toolkit(self, slug: str, where: str) -> None:
        if slug not in self._catalog or not is_toolkit(self._catalog.get(slug)):
            raise _invalid(f"unknown toolkit {slug[:64]!r}", "Toolkit_NotFound", where)

    async def _pinned(self, principal: Principal, user_id: str, toolkit: str, account_id: str) -> None:
        try:
            account = await self._accounts.get(principal, account_id)
        except NotFound:
            raise _invalid(
                f"connected account {account_id[:64]} does not exist",
                "ToolRouter_InvalidConnectedAccount",
                f"connected_accounts.{toolkit}",
            ) from None
        if account.toolkit != toolkit or account.user_id != user_id or not account.usable:
            raise _invalid(
                f"connected account {account_id[:64]} must be an enabled, ACTIVE {toolkit[:64]} account of "
                f"user_id {user_id[:64]!r}",
                "ToolRouter_InvalidConnectedAccount",
                f"connected_accounts.{toolkit}",
            )


def _view(row: ToolRouterSession) -> SessionView:
    config = row.config or {}
    return SessionView(
        id=row.id,
        organization_id=row.organization_id,
        user_id=row.user_id,
        toolkits_mode=config.get("toolkits_mode"),
        toolkits=list(config.get("toolkits") or []),
        auth_configs=dict(config.get("auth_configs") or {}),
        connected_accounts={k: list(v) for k, v in (config.get("connected_accounts") or {}).items()},
        require_explicit_selection=bool(config.get("require_explicit_selection")),
        options=dict(config.get("options") or {}),
        config_version=row.config_version,
        created_at=row.created_at,
    )
