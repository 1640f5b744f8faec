"""What a caller of the MCP tools may reach, and how a tool's ``connection`` names it.

Two scopes, one rule each, both the REST API's own: an API key reaches its organization's
connections (by id, or by name when exactly one has it); a tool router session reaches what its
``proxy_execute`` reaches (``SessionService``: the session's user, toolkits and pinned accounts),
named by toolkit slug.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from keyhole.api.mcp import schemas
from keyhole.connections.catalog import ConnectionType
from keyhole.connections.schemas import ConnectionView
from keyhole.connections.target import HttpTarget
from keyhole.errors import InvalidRequest, KeyholeError, NotFound
from keyhole.proxy import contract
from keyhole.queries.execution import QueryLimits
from keyhole.services import Services
from keyhole.tenancy.principal import Principal
from keyhole.toolrouter.service import SessionView


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    base_url: str  # the server's public base URL: download links are built on it
    session: SessionView | None = None  # set on a tool router session's MCP URL


def _not_found(reference: str) -> NotFound:
    return NotFound(
        f"no connection {reference[:64]!r} is reachable with this key; keyhole_list_connections lists "
        "those that are",
        key="connection_not_found",
    )


def _is_id(reference: str) -> bool:
    try:
        uuid.UUID(reference)
    except ValueError:
        return False
    return True


def _http_summary(connection_type: ConnectionType, target: HttpTarget) -> str:
    locked = ", ".join([*target.credential_headers, *target.credential_query]) or "nothing"
    limit = target.limits.rate_limit_per_minute
    rate = f"{limit} calls/min" if limit is not None else "no rate limit"
    methods = "/".join(contract.ALLOWED_METHODS)
    return f"{connection_type.name} at {target.base_url}; methods {methods}; Keyhole sets {locked}; {rate}"


def _sql_summary(connection_type: ConnectionType, view: ConnectionView) -> str:
    mode = "read-only" if QueryLimits.from_configuration(view.configuration).read_only else "read-write"
    dialect = connection_type.sql.dialect if connection_type.sql else "sql"
    return f"{connection_type.name} database ({dialect}, {mode}); query it with keyhole_sql_query"


def _health(view: ConnectionView) -> schemas.Health:
    return {"status": view.status, "error": view.status_error}


async def summary(services: Services, caller: Caller, view: ConnectionView) -> schemas.ConnectionSummary:
    kind = view.type.kind
    base_url: str | None = None
    if kind == "http":
        try:
            target = await services.connections.http_target(caller.principal.organization_id, view.id)
        except KeyholeError as problem:
            line = f"{view.type.name}; not callable now: {problem.message}"
        else:
            base_url = str(target.base_url)
            line = _http_summary(view.type, target)
    else:
        line = _sql_summary(view.type, view)
    return {
        "id": view.id,
        "name": view.name,
        "type": view.type.id,
        "kind": kind,
        "base_url": base_url,
        "health": _health(view),
        "account_id": None,
        "summary": line,
    }


async def session_summary(
    services: Services, caller: Caller, toolkit: str, target: HttpTarget | None, problem: KeyholeError | None
) -> schemas.ConnectionSummary:
    connection_type = services.catalog.get(toolkit)
    if target is None:
        assert problem is not None
        health: schemas.Health = {"status": "unusable", "error": f"{problem.key}: {problem.message}"}
        line = f"{connection_type.name}; not callable in this session: {problem.message}"
    else:
        health = _health(await services.connections.get(caller.principal, target.connection_id))
        line = _http_summary(connection_type, target)
    return {
        "id": toolkit,
        "name": connection_type.name,
        "type": toolkit,
        "kind": "http",
        "base_url": None if target is None else str(target.base_url),
        "health": health,
        "account_id": None if target is None else target.connection_id,
        "summary": line,
    }


def matches(search: str | None, *values: str) -> bool:
    """Whether ``search`` is part of any of ``values``, in any case (no search: all match)."""
    return search is None or any(search.casefold() in value.casefold() for value in values)


async def connections(
    services: Services, caller: Caller, *, kind: str | None, search: str | None, offset: int, limit: int
) -> tuple[list[schemas.ConnectionSummary], int]:
    """One page of what the caller reaches, filtered, and how many match in all; only the page's
    connections are looked at beyond their rows."""
    if caller.session is not None:
        reached = [
            item
            for item in await services.sessions.reachable(caller.principal, caller.session)
            if kind in (None, "http")
            and matches(search, item.toolkit, services.catalog.get(item.toolkit).name)
        ]
        page = reached[offset : offset + limit]
        summaries = [await session_summary(services, caller, r.toolkit, r.target, r.problem) for r in page]
        return summaries, len(reached)
    found = [
        view
        for view in sorted(await services.connections.list(caller.principal), key=lambda v: (v.name, v.id))
        if (kind is None or view.type.kind == kind) and matches(search, view.name, view.type.id, view.id)
    ]
    return [await summary(services, caller, view) for view in found[offset : offset + limit]], len(found)


async def view(services: Services, caller: Caller, reference: str) -> ConnectionView:
    """The organization's connection ``reference`` names (an API key's scope only)."""
    if _is_id(reference):
        try:
            return await services.connections.get(caller.principal, reference)
        except NotFound:
            raise _not_found(reference) from None
    named = [v for v in await services.connections.list(caller.principal) if v.name == reference]
    if len(named) != 1:
        if named:
            raise InvalidRequest(
                f"{len(named)} connections are named {reference[:64]!r}; name one by its id",
                key="connection_ambiguous",
            )
        raise _not_found(reference)
    return named[0]


async def http_target(services: Services, caller: Caller, reference: str) -> HttpTarget:
    """The target a call through ``reference`` uses: the same lookup as the REST proxy's (cached,
    so a call by id reads nothing from the store once warm)."""
    if caller.session is not None:
        return await services.sessions.target(caller.principal, caller.session, reference)
    connection_id = reference if _is_id(reference) else (await view(services, caller, reference)).id
    try:
        return await services.proxy.target(caller.principal, connection_id)
    except NotFound:
        raise _not_found(reference) from None
    except InvalidRequest as error:
        if error.key != "proxy_not_supported":
            raise
        raise InvalidRequest(
            f"connection {reference[:64]!r} is a database; query it with keyhole_sql_query",
            key="not_an_http_connection",
        ) from None


async def sql_connection(services: Services, caller: Caller, reference: str) -> ConnectionView:
    if caller.session is not None:
        raise InvalidRequest(
            "a tool router session reaches HTTP toolkits only; run SQL with an API key's MCP URL",
            key="sql_not_in_session",
        )
    connection = await view(services, caller, reference)
    if connection.type.kind != "sql":
        raise InvalidRequest(
            f"connection {reference[:64]!r} is an HTTP API; call it with keyhole_http_get or "
            "keyhole_http_request",
            key="not_a_sql_connection",
        )
    return connection
