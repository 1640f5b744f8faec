"""Fixtures of the console suite: a live server with a SQL file root, two organizations, and
their users' and organizations' keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from browser import launched
from conftest import KeyholeServer, Keys, server_env

from .support import ConsoleClient, sign_in


@dataclass
class ConsoleServer:
    server: KeyholeServer
    sql_root: Path
    acme: Keys
    rival: Keys

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    home = tmp_path_factory.mktemp("keyhole-console")
    sql_root = home / "sql"
    sql_root.mkdir()
    server = KeyholeServer(
        home, server_env(home, KEYHOLE_SQL_FILE_ROOT=str(sql_root), KEYHOLE_QUERY_PAGE_ROWS="25")
    ).start()
    try:
        yield ConsoleServer(
            server,
            sql_root,
            server.bootstrap("console-acme", "ada@acme.test"),
            server.bootstrap("console-rival", "rob@rival.test"),
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per module; each test opens its own contexts. Not for the session:
    Playwright's synchronous API keeps an event loop running in this thread while it is open,
    which the suite's async tests in other modules cannot share."""
    with launched() as instance:
        yield instance


@pytest.fixture(scope="module")
def org(console_server: ConsoleServer) -> Keys:
    """An organization of the test module's own, so that what it counts is its own."""
    return console_server.server.bootstrap(f"console-{uuid.uuid4().hex[:8]}", "cora@conn.test")


@pytest.fixture
def client(console_server: ConsoleServer, org: Keys) -> Iterator[ConsoleClient]:
    """The console, signed in as ``org``'s user."""
    signed_in = sign_in(console_server.url, org.user_api_key)
    yield signed_in
    signed_in.http.close()


@pytest.fixture
def api(console_server: ConsoleServer, org: Keys) -> Iterator[httpx.Client]:
    """The REST API, as ``org``'s user."""
    with httpx.Client(base_url=console_server.url, headers=org.bearer, timeout=30) as rest:
        yield rest
