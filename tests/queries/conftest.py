"""Fixtures of the query-runner suite: a server with small pages and a SQL file root, tenants,
and one connection per database (PostgreSQL and MariaDB on this machine, SQLite and DuckDB
files under the server's KEYHOLE_SQL_FILE_ROOT)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from polytomic import Polytomic
from polytomic.errors import NotFoundError

from conftest import KeyholeServer, Keys, require_service, server_env

from .support import MARIADB, POSTGRES, sdk

PAGE_ROWS = 1000


@pytest.fixture(scope="session")
def sql_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sql-files")


@pytest.fixture(scope="session")
def qserver(tmp_path_factory: pytest.TempPathFactory, sql_root: Path) -> Iterator[KeyholeServer]:
    home = tmp_path_factory.mktemp("keyhole-queries")
    env = server_env(home, KEYHOLE_QUERY_PAGE_ROWS=str(PAGE_ROWS), KEYHOLE_SQL_FILE_ROOT=str(sql_root))
    instance = KeyholeServer(home, env).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def alice(qserver: KeyholeServer) -> Keys:
    return qserver.bootstrap("query-org", "alice@query.test")


@pytest.fixture(scope="session")
def client(qserver: KeyholeServer, alice: Keys) -> Polytomic:
    return sdk(qserver, alice.user_api_key)


def _connection(
    client: Polytomic, name: str, type_id: str, configuration: dict[str, object]
) -> Iterator[str]:
    created = client.connections.create(name=name, type=type_id, configuration=configuration)
    yield created.data.id
    with contextlib.suppress(NotFoundError):
        client.connections.delete(id=created.data.id)


@pytest.fixture(scope="session")
def pg(client: Polytomic) -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    yield from _connection(client, "pg", "postgresql", dict(POSTGRES))


@pytest.fixture(scope="session")
def maria(client: Polytomic) -> Iterator[str]:
    require_service("MariaDB", "127.0.0.1", 3306)
    yield from _connection(client, "maria", "mysql", dict(MARIADB))


@pytest.fixture(scope="session")
def sqlite_file(sql_root: Path) -> Path:
    path = sql_root / "sample.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB)")
        connection.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            [(1, "one", 1.5, b"\x00\x01"), (2, "two", None, None), (3, "três", 3.25, b"\xff")],
        )
    return path


@pytest.fixture(scope="session")
def sqlite_conn(client: Polytomic, sqlite_file: Path) -> Iterator[str]:
    yield from _connection(client, "lite", "sqlite", {"path": sqlite_file.name})


@pytest.fixture(scope="session")
def duckdb_file(sql_root: Path) -> Path:
    import duckdb

    path = sql_root / "sample.duckdb"
    connection = duckdb.connect(str(path))
    try:
        connection.execute("CREATE TABLE items (id INTEGER, name VARCHAR, price DECIMAL(10, 2))")
        connection.execute("INSERT INTO items VALUES (1, 'one', 1.50), (2, 'two', NULL), (3, 'three', 3.25)")
    finally:
        connection.close()
    return path


@pytest.fixture(scope="session")
def duck_conn(client: Polytomic, duckdb_file: Path) -> Iterator[str]:
    yield from _connection(client, "duck", "duckdb", {"path": duckdb_file.name})


@pytest.fixture(scope="session")
def make_connection(client: Polytomic) -> Iterator[object]:
    """``make_connection(type, configuration, client=…, validate=True)`` → id; deleted at the end."""
    made: list[tuple[Polytomic, str]] = []

    def factory(
        type_id: str,
        configuration: dict[str, object],
        *,
        owner: Polytomic | None = None,
        validate: bool = True,
    ) -> str:
        who = owner or client
        created = who.connections.create(
            name=f"{type_id} {len(made)}", type=type_id, configuration=configuration, validate=validate
        )
        connection_id: str = created.data.id
        made.append((who, connection_id))
        return connection_id

    yield factory
    for who, connection_id in made:
        with contextlib.suppress(NotFoundError):
            who.connections.delete(id=connection_id)


def mint_key(server: KeyholeServer, organization_id: str, user_id: str | None = None) -> str:
    args = ["keys", "create", "--organization", organization_id]
    if user_id is not None:
        args += ["--user", user_id]
    out = server.cli(*args).stdout.strip().splitlines()[-1]
    return str(json.loads(out)["api_key"])
