"""A database password never shows in a query's error, in any case or encoding: not in the API
answer, not in ``queries.error`` or ``jobs.error``, not in the server's log.

PostgreSQL folds an unquoted identifier to lower case, so ``SELECT Pg_Secret_…`` fails with
``column "pg_secret_…" does not exist``: a scrubber that matched the password as typed let it
through. The errors go through the same scrubber as proxied answers (``keyhole.vault.scrub``)."""

from __future__ import annotations

import asyncio
import base64
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from urllib.parse import quote

import asyncpg
import pytest
from polytomic import Polytomic

from conftest import POSTGRES_URL, KeyholeServer, require_service

from .support import POSTGRES, run

pytestmark = pytest.mark.postgres


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def role() -> Iterator[tuple[str, str]]:
    """A login role with a mixed-case password (trust authentication lets any password in)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"kh_scrub_{secrets.token_hex(4)}"
    password = f"Pg_Secret_XYZ_{secrets.token_hex(6).upper()}"
    asyncio.run(_admin(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
    yield name, password
    asyncio.run(_admin(f"DROP ROLE IF EXISTS {name}"))


def _stored_errors(server: KeyholeServer, query_ids: list[str]) -> list[str]:
    """``queries.error`` of these queries, and ``jobs.error`` of every failed query job."""
    with sqlite3.connect(server.home / "keyhole.db") as database:
        marks = ",".join("?" * len(query_ids))
        queries = database.execute(f"SELECT error FROM queries WHERE id IN ({marks})", query_ids).fetchall()
        jobs = database.execute(
            "SELECT error FROM jobs WHERE type = 'query' AND error IS NOT NULL"
        ).fetchall()
    assert len(queries) == len(query_ids)
    assert sum("[REDACTED]" in str(error) for (error,) in jobs) >= len(query_ids)
    return [str(error) for (error,) in queries + jobs]


def test_the_password_is_scrubbed_from_query_errors_in_any_case(
    client: Polytomic,
    qserver: KeyholeServer,
    make_connection: Callable[..., str],
    role: tuple[str, str],
) -> None:
    name, password = role
    connection = make_connection("postgresql", {**POSTGRES, "username": name, "password": password})
    statements = [
        f"SELECT {password}",  # echoed lower-cased
        f'SELECT "{password.upper()}"',  # echoed upper-cased, as quoted
        f'SELECT * FROM "{quote(password.lower(), safe="")}"',
        f'SELECT "{base64.b64encode(password.encode()).decode()}"',
    ]
    answers, query_ids = [], []
    for sql in statements:
        result = run(client, connection, sql)
        assert result.data.status == "failed", result.data
        assert "[REDACTED]" in result.data.error
        answers.append(result.data.error)
        query_ids.append(result.data.id)
    assert 'column "[REDACTED]" does not exist' in answers[0]
    seen = [*answers, *_stored_errors(qserver, query_ids), qserver.logs()]
    forms = {password, quote(password), base64.b64encode(password.encode()).decode()}
    for text in seen:
        for form in forms:
            assert form.lower() not in text.lower()
