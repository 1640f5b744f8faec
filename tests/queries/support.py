"""Helpers of the query-runner suite: the official SDK as the client, polling, page walking."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from polytomic import Polytomic

from conftest import POSTGRES_URL, KeyholeServer

TERMINAL = ("done", "failed", "unknown")


def admin(statement: str, *args: Any) -> Any:
    """``statement`` run on the test PostgreSQL database as its superuser, outside Keyhole."""

    async def go() -> Any:
        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            return await connection.fetch(statement, *args)
        finally:
            await connection.close()

    return asyncio.run(go())


POSTGRES = {
    "hostname": "127.0.0.1",
    "port": 5432,
    "database": "test",
    "username": "postgres",
    "ssl_mode": "disable",
}
MARIADB = {
    "hostname": "127.0.0.1",
    "port": 3306,
    "database": "test",
    "username": "root",
    "ssl_mode": "disable",
}


def sdk(server: KeyholeServer, token: str | None = None, headers: dict[str, str] | None = None) -> Polytomic:
    # No retries: a 5xx must surface as a failure instead of being retried away.
    return Polytomic(base_url=server.url, token=token, headers=headers, max_retries=0, timeout=120)


def page_token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["page"][0]


def wait(client: Polytomic, query_id: str, timeout: float = 120.0) -> Any:
    """The query once it is terminal (the first page when done)."""
    deadline = time.monotonic() + timeout
    while True:
        result = client.query_runner.get_query(id=query_id)
        if result.data.status in TERMINAL:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"query {query_id} still {result.data.status} after {timeout}s")
        time.sleep(0.05)


def run(client: Polytomic, connection_id: str, sql: str, timeout: float = 120.0) -> Any:
    submitted = client.query_runner.run_query(connection_id=connection_id, query=sql)
    assert submitted.data.status == "created", submitted
    assert submitted.data.id
    return wait(client, submitted.data.id, timeout)


@dataclass
class Walk:
    fields: list[str]
    count: int
    rows: list[dict[str, Any]]
    pages: int


def walk(client: Polytomic, query_id: str) -> Walk:
    """Every page, following links.next as the spec's snippet does; checks links.previous too."""
    token: str | None = None
    rows: list[dict[str, Any]] = []
    pages = 0
    previous: str | None = None
    while True:
        result = client.query_runner.get_query(id=query_id, page=token)
        assert result.data.status == "done", result.data
        if pages == 0:
            assert result.links is None or result.links.previous is None
        else:
            assert result.links is not None and result.links.previous is not None
            assert page_token(result.links.previous) == previous
        rows.extend(result.data.results or [])
        pages += 1
        next_link = result.links.next if result.links else None
        if not next_link:
            return Walk(list(result.data.fields or []), int(result.data.count or 0), rows, pages)
        assert next_link.startswith(f"/api/queries/{query_id}?page=")
        previous = token or _first_page_token(client, query_id, result)
        token = page_token(next_link)


def _first_page_token(client: Polytomic, query_id: str, first: Any) -> str:
    """The token of page 0 is only ever seen as links.previous of page 1."""
    second = client.query_runner.get_query(id=query_id, page=page_token(first.links.next))
    return page_token(second.links.previous)


def rows_of(client: Polytomic, connection_id: str, sql: str) -> list[dict[str, Any]]:
    result = run(client, connection_id, sql)
    assert result.data.status == "done", result.data.error
    return walk(client, result.data.id).rows


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")
