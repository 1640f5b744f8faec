"""Fixtures of the MCP server suite: a live server with a SQL file root and small result pages,
two organizations, an HTTP connection to httpbin with a credential, and a SQLite file."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import KeyholeServer, Keys, server_env

from .support import SECRET

PAGE_ROWS = 40  # the server's stored pages: a tool's pages cross them
ROWS = 130


@dataclass
class Org:
    keys: Keys
    rest: httpx.Client  # the Polytomic REST API, as this organization's user

    def create(self, body: dict[str, object]) -> str:
        response = self.rest.post("/api/connections", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["data"]["id"])


@pytest.fixture(scope="session")
def sql_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcp-sql")
    with sqlite3.connect(root / "items.sqlite") as connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, big INTEGER, price REAL)")
        connection.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            [(i, f"item {i}", 2**60 + i, i / 4) for i in range(ROWS)],
        )
    return root


@pytest.fixture(scope="session")
def mserver(tmp_path_factory: pytest.TempPathFactory, sql_root: Path) -> Iterator[KeyholeServer]:
    home = tmp_path_factory.mktemp("keyhole-mcp")
    env = server_env(home, KEYHOLE_QUERY_PAGE_ROWS=str(PAGE_ROWS), KEYHOLE_SQL_FILE_ROOT=str(sql_root))
    instance = KeyholeServer(home, env).start()
    yield instance
    instance.stop()


def _org(server: KeyholeServer, name: str) -> Iterator[Org]:
    keys = server.bootstrap(name, f"agent@{name}.test")
    with httpx.Client(base_url=server.url, headers=keys.bearer, timeout=30) as rest:
        yield Org(keys, rest)


@pytest.fixture(scope="session")
def acme(mserver: KeyholeServer) -> Iterator[Org]:
    yield from _org(mserver, "acme")


@pytest.fixture(scope="session")
def rival(mserver: KeyholeServer) -> Iterator[Org]:
    yield from _org(mserver, "rival")


@pytest.fixture(scope="session")
def httpbin_connection(acme: Org, httpbin_url: str) -> str:
    """``billing``: httpbin behind a bearer credential (``SECRET``)."""
    return acme.create(
        {
            "name": "billing",
            "type": "api",
            "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": SECRET}},
            "validate": False,
        }
    )


@pytest.fixture(scope="session")
def sqlite_connection(acme: Org) -> str:
    """``warehouse``: the SQLite file of ``sql_root`` (read-only, as the type defaults)."""
    return acme.create({"name": "warehouse", "type": "sqlite", "configuration": {"path": "items.sqlite"}})


@pytest.fixture(scope="session")
def rival_connection(rival: Org, httpbin_url: str) -> str:
    return rival.create(
        {
            "name": f"rival-{uuid.uuid4().hex[:6]}",
            "type": "api",
            "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": "sek_rival_Zx81"}},
            "validate": False,
        }
    )


@pytest.fixture(scope="session")
def ledger(acme: Org, sql_root: Path) -> tuple[str, Path]:
    """A SQLite connection that may write, on its own file: ``(name, file)``; tables ``items``
    (``ROWS`` rows) and ``control`` (empty)."""
    name = f"ledger-{uuid.uuid4().hex[:6]}"
    path = sql_root / f"{name}.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("CREATE TABLE control (id INTEGER PRIMARY KEY)")
        connection.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"item {i}") for i in range(ROWS)])
    acme.create(
        {"name": name, "type": "sqlite", "configuration": {"path": path.name, "query": {"read_only": False}}}
    )
    return name, path
