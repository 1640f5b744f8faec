"""Keyset pagination of the organization-wide log: every record once across pages while calls
keep arriving, and each page a range of the (organization_id, created_at) index."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime

import httpx
from sqlalchemy.dialects import sqlite

from conftest import KeyholeServer
from keyhole.audit.query import CallFilter, StatusClass
from keyhole.audit.repository import organization_calls_statement

from .support import httpbin_connection, position, tenant, wait_for, walk

BEFORE_THE_WALK = 30


def test_walk_lists_every_record_once_while_calls_arrive(server: KeyholeServer, httpbin_url: str) -> None:
    owner = tenant(server, "paging")
    connection = httpbin_connection(owner, httpbin_url)
    first = [
        owner.made(connection, 200, method="GET", path=f"/status/{200 if n % 3 else 404}")
        for n in range(BEFORE_THE_WALK)
    ]
    wait_for(owner.client, first)

    stop = threading.Event()
    arrived: list[str] = []
    failures: list[str] = []

    def keep_calling() -> None:
        with httpx.Client(base_url=server.url, headers=owner.keys.bearer, timeout=30) as client:
            while not stop.is_set():
                response = client.post(
                    f"/api/connections/{connection}/proxy",
                    json={"request": {"method": "GET", "path": "/get"}},
                )
                if response.status_code != 200:
                    failures.append(response.text)
                    return
                arrived.append(response.json()["data"]["proxyCallId"])

    caller = threading.Thread(target=keep_calling, name="concurrent-calls")
    caller.start()
    walks = {}
    try:
        while len(arrived) < 3 and caller.is_alive():  # calls are arriving before the walks start
            stop.wait(0.01)
        for limit in (1, 4, 7):
            walks[limit] = walk(owner.client, {"limit": str(limit)})
    finally:
        stop.set()
        caller.join(30)
    assert not failures and len(arrived) > 3  # the walks ran while calls were being stored

    for limit, pages in walks.items():
        listed = [record for one_page in pages for record in one_page]
        ids = [record["proxyCallId"] for record in listed]
        assert len(ids) == len(set(ids)), f"listed twice with limit {limit}"
        assert set(first) <= set(ids)
        assert set(ids) <= set(first) | set(arrived)
        positions = [position(record) for record in listed]
        assert positions == sorted(positions, reverse=True)
        assert all(len(one_page) == limit for one_page in pages[:-1])

    filtered = walk(owner.client, {"limit": "2", "status_class": "4xx"})
    assert sorted(r["proxyCallId"] for one_page in filtered for r in one_page) == sorted(
        call_id for n, call_id in enumerate(first) if n % 3 == 0
    )
    owner.client.close()


def test_pages_are_ranges_of_the_organization_index(server: KeyholeServer) -> None:
    """The plan SQLite chooses for the log's statement on a migrated store: a search of the
    (organization_id, created_at) index bounded by the cursor and the time range, never a scan."""
    now = datetime.now(UTC)
    cases = [
        (CallFilter(), None, "organization_id=?"),
        (CallFilter(), (now, "x"), "organization_id=? AND created_at<?"),
        (
            CallFilter(connection_id="c", ok=False, status_class=StatusClass.NONE, since=now, until=now),
            (now, "x"),
            "organization_id=? AND created_at>? AND created_at<?",
        ),
    ]
    with sqlite3.connect(f"file:{server.home / 'keyhole.db'}?mode=ro", uri=True) as db:
        for filters, before, seek in cases:
            statement = organization_calls_statement("o", filters, limit=10, before=before)
            compiled = statement.compile(dialect=sqlite.dialect())
            parameters = ["x"] * len(compiled.positiontup or ())
            plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {compiled}", parameters)]
            assert (
                plan[0] == f"SEARCH proxy_calls USING INDEX ix_proxy_calls_organization_created ({seek})"
            ), plan
            assert not any(step.startswith("SCAN") for step in plan), plan
