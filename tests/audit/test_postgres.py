"""The organization-wide log on a PostgreSQL store: filters, times with offsets and keyset
pages, bad cursors and times a 400 (never a driver error), and the statement an index range."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta, timezone

import asyncpg
import pytest
from hypothesis import given, settings
from sqlalchemy.engine import make_url

from conftest import KeyholeServer, fresh_postgres_database
from foundation.helpers import assert_envelope
from keyhole.audit.query import CallFilter, StatusClass
from keyhole.audit.repository import organization_calls_statement

from .support import (
    assert_page_or_invalid_cursor,
    forged,
    httpbin_connection,
    moment,
    mutated,
    page,
    position,
    records,
    tenant,
    wait_for,
    walk,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with fresh_postgres_database("keyhole_audit") as name:
        yield name


async def test_organization_log_on_postgres(
    database: str, make_server: Callable[..., KeyholeServer], httpbin_url: str
) -> None:
    server = make_server(KEYHOLE_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}")
    owner, other = tenant(server, "pg"), tenant(server, "pg-other")
    connection = httpbin_connection(owner, httpbin_url)
    made = [
        owner.made(connection, 200, method="GET", path="/get"),
        owner.made(connection, 200, method="GET", path="/status/404"),
        owner.made(connection, 400, method="GET", path="/get", headers={"Authorization": "Bearer mine"}),
        owner.made(connection, 200, method="GET", path="/status/500"),
    ]
    foreign = httpbin_connection(other, httpbin_url)
    foreign_call = other.made(foreign, 200, method="GET", path="/get")
    listed = wait_for(owner.client, made)
    wait_for(other.client, [foreign_call])
    assert sorted(r["proxyCallId"] for r in listed) == sorted(made)
    assert [r["proxyCallId"] for r in listed] == made[::-1]  # newest first

    client = owner.client
    assert [r["proxyCallId"] for r in records(client, {"status_class": "4xx"})] == [made[1]]
    assert [r["proxyCallId"] for r in records(client, {"status_class": "none"})] == [made[2]]
    assert [r["proxyCallId"] for r in records(client, {"ok": "false"})] == [made[2]]
    assert records(client, {"connection_id": foreign}) == []
    middle = listed[1]
    east = moment(middle).astimezone(timezone(timedelta(hours=9))).isoformat()
    assert records(client, {"since": east, "until": east}) == [middle]
    assert records(client, {"since": east}) == listed[:2]
    pages = walk(client, {"limit": "1"})
    assert [[r["proxyCallId"]] for r in listed] == [[r["proxyCallId"] for r in p] for p in pages]
    assert [position(r) for r in listed] == sorted((position(r) for r in listed), reverse=True)

    for query, key in (
        ({"since": "0001-01-01T00:00:00+01:00"}, "validation_error"),
        ({"until": "9999-12-31T23:59:59-01:00"}, "validation_error"),
        ({"outcome": "ok\x00"}, "validation_error"),
        ({"connection_id": connection + "\x00"}, "validation_error"),
        ({"cursor": forged(f"2025-01-31T12:00:00+00:00|{made[0]}\x00")}, "invalid_cursor"),
        ({"cursor": forged(f"2025-01-31T12:00:00|{made[0]}")}, "invalid_cursor"),
        ({"cursor": forged(f"0001-01-01T00:00:00+14:00|{made[0]}")}, "invalid_cursor"),
    ):
        assert_envelope(page(client, query), 400, key)

    cursor = str(page(client, {"limit": "2"}).json()["links"]["next"]).split("cursor=")[1]

    @settings(max_examples=100, deadline=None)
    @given(candidate=mutated(cursor))
    def no_mutation_fails(candidate: str) -> None:
        assert_page_or_invalid_cursor(page(client, {"limit": "2", "cursor": candidate}), set(made))

    no_mutation_fails()
    owner.client.close()
    other.client.close()

    await assert_index_range(database)


async def assert_index_range(database: str) -> None:
    """With sequential scans priced out (a test table is too small for the planner to bother),
    a page is a backward scan of the (organization_id, created_at) index bounded by the time
    range and the cursor (ties of created_at are ordered by id: an incremental sort on a real
    table)."""
    now = moment({"createdAt": "2025-01-31T12:00:00Z"})
    filters = CallFilter(status_class=StatusClass.NONE, since=now - timedelta(days=1), until=now)
    statement = organization_calls_statement("o", filters, limit=10, before=(now, "x"))
    compiled = statement.compile(dialect=make_url("postgresql+asyncpg://").get_dialect()())
    arguments = [compiled.params[name] for name in compiled.positiontup or ()]
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}")
    try:
        await connection.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in await connection.fetch(f"EXPLAIN {compiled}", *arguments))
    finally:
        await connection.close()
    assert "Index Scan Backward using ix_proxy_calls_organization_created" in plan, plan
    [bounds] = [line for line in plan.splitlines() if "Index Cond:" in line]
    assert all(part in bounds for part in ("organization_id", "created_at >=", "created_at <=")), plan
